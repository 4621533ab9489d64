/* nhdb text formats: parsing and writing. See text.h and docs/nhdb.md. */
#include "text.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    nhdb_fmt fmt;
} fmts[] = {{"auto", NHDB_FMT_AUTO},
            {"neural", NHDB_FMT_NEURAL},
            {"pdq", NHDB_FMT_PDQ},
            {"jsonl", NHDB_FMT_JSONL},
            {"csv", NHDB_FMT_CSV}};

nh_status nhdb_fmt_parse(const char *name, nhdb_fmt *out)
{
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
        if (strcmp(name, fmts[i].name) == 0) {
            *out = fmts[i].fmt;
            return NH_OK;
        }
    return NH_ERR_INVALID;
}

const char *nhdb_fmt_name(nhdb_fmt fmt)
{
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
        if (fmts[i].fmt == fmt)
            return fmts[i].name;
    return "?";
}

void nhdb_parsed_free(nhdb_parsed *p)
{
    if (!p)
        return;
    free(p->source);
    free(p->label);
    free(p->note);
    memset(p, 0, sizeof *p);
}

int nhdb_text_read(FILE *f, nhdb_fmt fmt, char **buf, size_t *cap, size_t *lines)
{
    size_t len = 0, nl = 0;
    int quotes_open = 0;
    for (;;) {
        int c = getc_unlocked(f); /* one thread reads each file */
        if (c == EOF) {
            if (ferror(f))
                return -1;
            if (len == 0 && nl == 0)
                return 0;
            nl++;
            break;
        }
        if (len + 2 > *cap) {
            size_t ncap = *cap ? *cap * 2 : 256;
            char *nb = realloc(*buf, ncap);
            if (!nb) {
                errno = ENOMEM;
                return -1;
            }
            *buf = nb;
            *cap = ncap;
        }
        if (c == '"' && fmt == NHDB_FMT_CSV)
            quotes_open = !quotes_open;
        if (c == '\n') {
            nl++;
            if (!quotes_open)
                break;
        }
        (*buf)[len++] = (char)c;
    }
    if (len && (*buf)[len - 1] == '\r')
        len--;
    if (!*buf) {
        *buf = malloc(1);
        *cap = 1;
        if (!*buf)
            return -1;
    }
    (*buf)[len] = '\0';
    *lines = nl;
    return 1;
}

static int is_hex_run(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]))
            return 0;
    return 1;
}

/* Whether n hex digits are a neural hash's: a whole number of bytes of a valid width. */
static int neural_hex_len(size_t n)
{
    return n % 2 == 0 && n <= 2 * NH_DB_HASH_MAX &&
           nh_kind_bits_valid(NH_KIND_NEURAL, (unsigned)n * 4);
}

nhdb_fmt nhdb_text_sniff(const char *line)
{
    while (isspace((unsigned char)*line))
        line++;
    if (*line == '{')
        return NHDB_FMT_JSONL;
    if (strncmp(line, "kind,", 5) == 0)
        return NHDB_FMT_CSV;
    if (is_hex_run(line, 64) && line[64] == ',')
        return NHDB_FMT_PDQ;
    size_t n = 0;
    while (isxdigit((unsigned char)line[n]))
        n++;
    if (neural_hex_len(n) && (line[n] == '\0' || isspace((unsigned char)line[n])))
        return NHDB_FMT_NEURAL;
    return NHDB_FMT_AUTO;
}

static int set_str(char **dst, size_t *cap, const char *s, size_t n)
{
    if (n + 1 > *cap) {
        char *nb = realloc(*dst, n + 1);
        if (!nb)
            return -1;
        *dst = nb;
        *cap = n + 1;
    }
    memcpy(*dst, s, n);
    (*dst)[n] = '\0';
    return 0;
}

static nh_status fail(char *msg, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static nh_status fail(char *msg, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, cap, fmt, ap);
    va_end(ap);
    return NH_ERR_INVALID;
}

static void reset(nhdb_parsed *p)
{
    p->skip = 0;
    memset(&p->entry, 0, sizeof p->entry);
    p->entry.quality = -1;
    p->entry.hash = p->hash;
    set_str(&p->source, &p->source_cap, "", 0);
    set_str(&p->label, &p->label_cap, "", 0);
    set_str(&p->note, &p->note_cap, "", 0);
}

static void finish(nhdb_parsed *p)
{
    p->entry.source = p->source;
    p->entry.label = p->label;
    p->entry.note = p->note;
}

/* Field values shared by JSONL and CSV. */
typedef struct fields {
    int have_kind, have_hash;
} fields;

static nh_status set_field(nhdb_parsed *p, fields *fl, const char *name, const char *val, size_t n,
                           int is_null, char *msg, size_t cap)
{
    if (strcmp(name, "kind") == 0) {
        char tmp[16];
        if (is_null || n >= sizeof tmp)
            return fail(msg, cap, "bad kind");
        memcpy(tmp, val, n);
        tmp[n] = '\0';
        nh_kind_type t;
        if (nh_kind_parse(tmp, &t))
            return fail(msg, cap, "unknown kind \"%s\" (neural, pdq, digest)", tmp);
        p->entry.kind.type = t;
        fl->have_kind = 1;
    } else if (strcmp(name, "model") == 0) {
        if (!is_null && n && nh_hex_decode(val, n, p->entry.kind.model, 8))
            return fail(msg, cap, "model must be 16 hex digits");
    } else if (strcmp(name, "hash") == 0) {
        if (is_null || n > 2 * NH_DB_HASH_MAX || n % 2 || nh_hex_decode(val, n, p->hash, n / 2))
            return fail(msg, cap, "hash must be hex digits");
        fl->have_hash = (int)n / 2;
    } else if (strcmp(name, "digest") == 0) {
        if (!is_null && n) {
            if (nh_hex_decode(val, n, p->digest, 16))
                return fail(msg, cap, "digest must be 32 hex digits");
            p->entry.digest = p->digest;
        }
    } else if (strcmp(name, "quality") == 0) {
        if (!is_null && n) {
            char tmp[16];
            char *end;
            if (n >= sizeof tmp)
                return fail(msg, cap, "bad quality");
            memcpy(tmp, val, n);
            tmp[n] = '\0';
            long q = strtol(tmp, &end, 10);
            if (*end || q < 0 || q > 100)
                return fail(msg, cap, "quality must be an integer 0..100");
            p->entry.quality = (int)q;
        }
    } else if (strcmp(name, "added") == 0) {
        if (!is_null && n) {
            char tmp[32];
            char *end;
            if (n >= sizeof tmp)
                return fail(msg, cap, "bad added time");
            memcpy(tmp, val, n);
            tmp[n] = '\0';
            long long t = strtoll(tmp, &end, 10);
            if (*end || t < 0)
                return fail(msg, cap, "added must be unix seconds");
            p->entry.added = t;
        }
    } else if (strcmp(name, "source") == 0 || strcmp(name, "label") == 0 ||
               strcmp(name, "note") == 0) {
        if (memchr(val, '\0', n))
            return fail(msg, cap, "%s holds a NUL character", name);
        char **dst = name[0] == 's' ? &p->source : name[0] == 'l' ? &p->label : &p->note;
        size_t *dc = name[0] == 's'   ? &p->source_cap
                     : name[0] == 'l' ? &p->label_cap
                                      : &p->note_cap;
        if (set_str(dst, dc, is_null ? "" : val, is_null ? 0 : n))
            return fail(msg, cap, "out of memory");
    }
    /* other names: ignored, for forward compatibility */
    return NH_OK;
}

static nh_status check_fields(nhdb_parsed *p, const fields *fl, char *msg, size_t cap)
{
    if (!fl->have_kind)
        return fail(msg, cap, "missing kind");
    if (!fl->have_hash)
        return fail(msg, cap, "missing hash");
    if (p->entry.kind.type == NH_KIND_NEURAL) {
        /* a neural kind's width is its hash's length */
        if (!neural_hex_len(2 * (size_t)fl->have_hash))
            return fail(msg, cap,
                        "a neural hash has 2 to %u hex digits in pairs (24 for 96 bits), not %d",
                        2 * NH_DB_HASH_MAX, 2 * fl->have_hash);
        p->entry.kind.bits = 8 * (unsigned)fl->have_hash;
    } else {
        unsigned want = nh_kind_type_bits(p->entry.kind.type) / 8;
        if ((unsigned)fl->have_hash != want)
            return fail(msg, cap, "a %s hash has %u hex digits, not %d",
                        nh_kind_name(p->entry.kind.type), 2 * want, 2 * fl->have_hash);
    }
    static const uint8_t zero[8];
    if (p->entry.kind.type != NH_KIND_NEURAL && memcmp(p->entry.kind.model, zero, 8))
        return fail(msg, cap, "only neural hashes carry a model");
    finish(p);
    return NH_OK;
}

/* Append UTF-8 of code point cp. */
static size_t utf8(char *o, unsigned cp)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | cp >> 6);
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | cp >> 12);
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | cp >> 18);
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (unsigned)d;
    }
    *out = v;
    return 0;
}

/* Parse a JSON string at *s (after the opening quote) into out (capacity >= strlen(*s)+1). */
static int json_str(const char **s, char *out, size_t *n)
{
    const char *p = *s;
    size_t o = 0;
    for (;;) {
        unsigned char c = (unsigned char)*p++;
        if (c == '\0' || c < 0x20)
            return -1;
        if (c == '"')
            break;
        if (c != '\\') {
            out[o++] = (char)c;
            continue;
        }
        c = (unsigned char)*p++;
        switch (c) {
        case '"':
            out[o++] = '"';
            break;
        case '\\':
            out[o++] = '\\';
            break;
        case '/':
            out[o++] = '/';
            break;
        case 'b':
            out[o++] = '\b';
            break;
        case 'f':
            out[o++] = '\f';
            break;
        case 'n':
            out[o++] = '\n';
            break;
        case 'r':
            out[o++] = '\r';
            break;
        case 't':
            out[o++] = '\t';
            break;
        case 'u': {
            unsigned cp, lo;
            if (hex4(p, &cp))
                return -1;
            p += 4;
            if (cp >= 0xd800 && cp < 0xdc00) {
                if (p[0] != '\\' || p[1] != 'u' || hex4(p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            } else if (cp >= 0xdc00 && cp < 0xe000) {
                return -1;
            }
            o += utf8(out + o, cp);
            break;
        }
        default:
            return -1;
        }
    }
    out[o] = '\0';
    *n = o;
    *s = p;
    return 0;
}

static nh_status parse_jsonl(const char *line, nhdb_parsed *p, char *msg, size_t cap)
{
    const char *s = line;
    fields fl = {0};
    size_t L = strlen(line);
    char *key = malloc(L + 1), *val = malloc(L + 1);
    nh_status st = NH_OK;
    if (!key || !val) {
        st = fail(msg, cap, "out of memory");
        goto cleanup;
    }
#define WS()                                                                                       \
    while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')                                    \
    s++
    WS();
    if (*s++ != '{') {
        st = fail(msg, cap, "expected a JSON object");
        goto cleanup;
    }
    WS();
    if (*s == '}') {
        s++;
    } else {
        for (;;) {
            size_t kn, vn = 0;
            int is_null = 0;
            WS();
            if (*s++ != '"' || json_str(&s, key, &kn)) {
                st = fail(msg, cap, "bad JSON key");
                goto cleanup;
            }
            WS();
            if (*s++ != ':') {
                st = fail(msg, cap, "expected ':' after \"%s\"", key);
                goto cleanup;
            }
            WS();
            if (*s == '"') {
                s++;
                if (json_str(&s, val, &vn)) {
                    st = fail(msg, cap, "bad JSON string for \"%s\"", key);
                    goto cleanup;
                }
            } else if (strncmp(s, "null", 4) == 0) {
                is_null = 1;
                s += 4;
            } else if (*s == '-' || isdigit((unsigned char)*s)) {
                const char *b = s;
                s++;
                while (isdigit((unsigned char)*s) || *s == '.' || *s == 'e' || *s == 'E' ||
                       *s == '+' || *s == '-')
                    s++;
                vn = (size_t)(s - b);
                memcpy(val, b, vn);
                val[vn] = '\0';
            } else if (strncmp(s, "true", 4) == 0 || strncmp(s, "false", 5) == 0) {
                s += *s == 't' ? 4 : 5;
                is_null = 1;
            } else {
                st = fail(msg, cap, "unsupported JSON value for \"%s\"", key);
                goto cleanup;
            }
            if ((st = set_field(p, &fl, key, val, vn, is_null, msg, cap)))
                goto cleanup;
            WS();
            if (*s == ',') {
                s++;
                continue;
            }
            if (*s == '}') {
                s++;
                break;
            }
            st = fail(msg, cap, "expected ',' or '}'");
            goto cleanup;
        }
    }
    WS();
    if (*s) {
        st = fail(msg, cap, "trailing characters after the JSON object");
        goto cleanup;
    }
#undef WS
    st = check_fields(p, &fl, msg, cap);
cleanup:
    free(key);
    free(val);
    return st;
}

static const char *csv_cols[] = {"kind",   "model", "hash", "digest", "quality",
                                 "source", "label", "note", "added"};
#define CSV_NCOLS (sizeof csv_cols / sizeof csv_cols[0])

static nh_status parse_csv(const char *line, nhdb_parsed *p, char *msg, size_t cap)
{
    if (strncmp(line, "kind,", 5) == 0) {
        p->skip = 1;
        return NH_OK;
    }
    if (*line == '\0') {
        p->skip = 1;
        return NH_OK;
    }
    fields fl = {0};
    size_t L = strlen(line);
    char *val = malloc(L + 1);
    nh_status st = NH_OK;
    if (!val)
        return fail(msg, cap, "out of memory");
    const char *s = line;
    size_t col = 0;
    for (;;) {
        size_t n = 0;
        if (*s == '"') {
            s++;
            for (;;) {
                if (*s == '\0') {
                    st = fail(msg, cap, "unterminated quoted field %zu", col + 1);
                    goto cleanup;
                }
                if (*s == '"') {
                    if (s[1] == '"') {
                        val[n++] = '"';
                        s += 2;
                        continue;
                    }
                    s++;
                    break;
                }
                val[n++] = *s++;
            }
            if (*s != ',' && *s != '\0') {
                st = fail(msg, cap, "characters after a quoted field %zu", col + 1);
                goto cleanup;
            }
        } else {
            while (*s != ',' && *s != '\0') {
                if (*s == '"') {
                    st = fail(msg, cap, "quote inside an unquoted field %zu", col + 1);
                    goto cleanup;
                }
                val[n++] = *s++;
            }
        }
        val[n] = '\0';
        if (col >= CSV_NCOLS) {
            st = fail(msg, cap, "more than %zu fields", CSV_NCOLS);
            goto cleanup;
        }
        if ((st = set_field(p, &fl, csv_cols[col], val, n, 0, msg, cap)))
            goto cleanup;
        col++;
        if (*s == '\0')
            break;
        s++;
    }
    if (col != CSV_NCOLS) {
        st = fail(msg, cap, "%zu fields, %zu expected", col, CSV_NCOLS);
        goto cleanup;
    }
    st = check_fields(p, &fl, msg, cap);
cleanup:
    free(val);
    return st;
}

nh_status nhdb_text_parse(nhdb_fmt fmt, const char *line, const uint8_t *neural_model,
                          nhdb_parsed *p, char *msg, size_t cap)
{
    reset(p);
    if (fmt == NHDB_FMT_NEURAL || fmt == NHDB_FMT_PDQ) {
        const char *s = line;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == '\0' || *s == '#') {
            p->skip = 1;
            return NH_OK;
        }
        if (fmt == NHDB_FMT_NEURAL) {
            size_t n = 0;
            while (isxdigit((unsigned char)s[n]))
                n++;
            if (!neural_hex_len(n) || (s[n] && !isspace((unsigned char)s[n])))
                return fail(msg, cap,
                            "expected 24 hex digits, optionally followed by whitespace "
                            "and a path (other neural widths: 2 to %u hex digits in pairs)",
                            2 * NH_DB_HASH_MAX);
            nh_hex_decode(s, n, p->hash, n / 2);
            p->entry.kind.type = NH_KIND_NEURAL;
            p->entry.kind.bits = (unsigned)n * 4; /* the width is the hash's length */
            if (neural_model)
                memcpy(p->entry.kind.model, neural_model, 8);
            s += n;
            while (*s == ' ' || *s == '\t')
                s++;
            if (set_str(&p->source, &p->source_cap, s, strlen(s)))
                return fail(msg, cap, "out of memory");
        } else {
            const char *c1 = strchr(s, ',');
            const char *c2 = c1 ? strchr(c1 + 1, ',') : NULL;
            if (!c1 || !c2 || c1 - s != 64 || nh_hex_decode(s, 64, p->hash, 32))
                return fail(msg, cap, "expected hash,quality,filename with a 64-hex-digit hash");
            char tmp[8];
            size_t qn = (size_t)(c2 - c1 - 1);
            char *end;
            if (qn == 0 || qn >= sizeof tmp)
                return fail(msg, cap, "bad quality");
            memcpy(tmp, c1 + 1, qn);
            tmp[qn] = '\0';
            long q = strtol(tmp, &end, 10);
            if (*end || q < 0 || q > 100)
                return fail(msg, cap, "quality must be an integer 0..100");
            p->entry.kind.type = NH_KIND_PDQ;
            p->entry.quality = (int)q;
            if (set_str(&p->source, &p->source_cap, c2 + 1, strlen(c2 + 1)))
                return fail(msg, cap, "out of memory");
        }
        finish(p);
        return NH_OK;
    }
    if (fmt == NHDB_FMT_JSONL) {
        const char *s = line;
        while (isspace((unsigned char)*s))
            s++;
        if (*s == '\0') {
            p->skip = 1;
            return NH_OK;
        }
        return parse_jsonl(line, p, msg, cap);
    }
    if (fmt == NHDB_FMT_CSV)
        return parse_csv(line, p, msg, cap);
    return fail(msg, cap, "unknown format");
}

/* ---- writing ---- */

void nhdb_json_string(FILE *f, const char *s)
{
    putc('"', f);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        switch (c) {
        case '"':
            fputs("\\\"", f);
            break;
        case '\\':
            fputs("\\\\", f);
            break;
        case '\n':
            fputs("\\n", f);
            break;
        case '\r':
            fputs("\\r", f);
            break;
        case '\t':
            fputs("\\t", f);
            break;
        default:
            if (c < 0x20)
                fprintf(f, "\\u%04x", c);
            else
                putc(c, f);
        }
    }
    putc('"', f);
}

static void csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    putc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            putc('"', f);
        putc(*s, f);
    }
    putc('"', f);
}

int nhdb_text_csv_header(FILE *f)
{
    for (size_t i = 0; i < CSV_NCOLS; i++)
        fprintf(f, "%s%s", i ? "," : "", csv_cols[i]);
    putc('\n', f);
    return ferror(f) ? -1 : 0;
}

int nhdb_text_write(FILE *f, nhdb_fmt fmt, const nh_db_record *r)
{
    char hex[2 * NH_DB_HASH_MAX + 1], model[17] = "", digest[33] = "";
    nh_hex_encode(r->hash, r->bits / 8, hex);
    if (r->kind.type == NH_KIND_NEURAL)
        nh_hex_encode(r->kind.model, 8, model);
    if (r->digest)
        nh_hex_encode(r->digest, 16, digest);
    switch (fmt) {
    case NHDB_FMT_NEURAL:
        fprintf(f, "%s%s%s\n", hex, r->source[0] ? " " : "", r->source);
        break;
    case NHDB_FMT_PDQ:
        fprintf(f, "%s,%d,%s\n", hex, r->quality < 0 ? 0 : r->quality, r->source);
        break;
    case NHDB_FMT_JSONL:
        fprintf(f, "{\"kind\":\"%s\",\"model\":", nh_kind_name(r->kind.type));
        if (model[0])
            fprintf(f, "\"%s\"", model);
        else
            fputs("null", f);
        fprintf(f, ",\"hash\":\"%s\",\"digest\":", hex);
        if (digest[0])
            fprintf(f, "\"%s\"", digest);
        else
            fputs("null", f);
        fputs(",\"quality\":", f);
        if (r->quality >= 0)
            fprintf(f, "%d", r->quality);
        else
            fputs("null", f);
        fputs(",\"source\":", f);
        nhdb_json_string(f, r->source);
        fputs(",\"label\":", f);
        nhdb_json_string(f, r->label);
        fputs(",\"note\":", f);
        nhdb_json_string(f, r->note);
        fprintf(f, ",\"added\":%" PRId64 "}\n", r->added);
        break;
    case NHDB_FMT_CSV: {
        fprintf(f, "%s,%s,%s,%s,", nh_kind_name(r->kind.type), model, hex, digest);
        if (r->quality >= 0)
            fprintf(f, "%d", r->quality);
        putc(',', f);
        csv_field(f, r->source);
        putc(',', f);
        csv_field(f, r->label);
        putc(',', f);
        csv_field(f, r->note);
        fprintf(f, ",%" PRId64 "\n", r->added);
        break;
    }
    default:
        return -1;
    }
    return ferror(f) ? -1 : 0;
}
