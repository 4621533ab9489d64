/* nhdb text formats: parsing and writing. See text.h and docs/nhdb.md. */
#include "text.h"

#include "nhash/out.h"

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

int nhdb_text_read(FILE *f, nhdb_fmt fmt, char **buf, size_t *cap, size_t *lines, size_t *n)
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
    if (n)
        *n = len;
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
    p->nextra = 0;
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
    unsigned exact; /* strings set from their _b64 copy (1 source, 2 label, 4 note) */
} fields;

/* The string field a name stands for: 0 source, 1 label, 2 note, -1 none. */
static int str_field(const char *name, size_t len)
{
    static const char *const names[3] = {"source", "label", "note"};
    for (int i = 0; i < 3; i++)
        if (strlen(names[i]) == len && !memcmp(name, names[i], len))
            return i;
    return -1;
}

static int set_str(char **dst, size_t *cap, const char *s, size_t n);

/* Set string field i of p from text (b64: base64 of the exact bytes). */
static nh_status set_string(nhdb_parsed *p, fields *fl, int i, const char *val, size_t n,
                            int is_null, int b64, const char *name, char *msg, size_t cap)
{
    char **dst = i == 0 ? &p->source : i == 1 ? &p->label : &p->note;
    size_t *dc = i == 0 ? &p->source_cap : i == 1 ? &p->label_cap : &p->note_cap;
    if (!b64) {
        if (fl->exact & (1u << i))
            return NH_OK; /* the exact copy wins */
        if (memchr(val, '\0', n))
            return fail(msg, cap, "%s holds a NUL character", name);
        if (set_str(dst, dc, is_null ? "" : val, is_null ? 0 : n))
            return fail(msg, cap, "out of memory");
        return NH_OK;
    }
    if (is_null)
        return NH_OK;
    char *raw = malloc(n + 1);
    size_t rn = 0;
    if (!raw)
        return fail(msg, cap, "out of memory");
    if (nh_base64_decode(val, n, (uint8_t *)raw, n + 1, &rn) != NH_OK || memchr(raw, '\0', rn)) {
        free(raw);
        return fail(msg, cap, "%s is not base64 of a string without NUL", name);
    }
    int bad = set_str(dst, dc, raw, rn);
    free(raw);
    if (bad)
        return fail(msg, cap, "out of memory");
    fl->exact |= 1u << i;
    return NH_OK;
}

static nh_status set_field(nhdb_parsed *p, fields *fl, const char *name, const char *val, size_t n,
                           int is_null, char *msg, size_t cap)
{
    /* a JSON "\u0000" would cut the value short where it is read as a C string */
    if (!is_null && memchr(val, '\0', n))
        return fail(msg, cap, "%s holds a NUL character", name);
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
    } else if (str_field(name, strlen(name)) >= 0) {
        return set_string(p, fl, str_field(name, strlen(name)), val, n, is_null, 0, name, msg,
                          cap);
    } else if (strlen(name) > 4 && !strcmp(name + strlen(name) - 4, "_b64") &&
               str_field(name, strlen(name) - 4) >= 0) {
        return set_string(p, fl, str_field(name, strlen(name) - 4), val, n, is_null, 1, name, msg,
                          cap);
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

/* One key of a JSON object line. */
struct kv {
    const char *key, *val;
    size_t vn;
    int is_null, is_true;
};

static const struct kv *kv_find(const struct kv *kv, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(kv[i].key, key))
            return &kv[i];
    return NULL;
}

/* An entry of a record line beyond the first: its hash in the record's extra storage. */
static nh_db_entry *record_entry(nhdb_parsed *p, int first)
{
    if (first)
        return &p->entry;
    nh_db_entry *e = &p->extra[p->nextra];
    *e = p->entry;
    e->hash = p->extra_hash[p->nextra];
    p->nextra++;
    return e;
}

/*
 * A record line as `nhash hash --format jsonl` writes it (no "kind"; "path" and the file's
 * hashes): the same entries `nhash hash --db` adds for the file, neural, pdq, then the file
 * by its digest, each carrying the digest. Records of failed or skipped files import nothing.
 */
static nh_status parse_record(nhdb_parsed *p, const struct kv *kv, size_t n, char *msg,
                              size_t cap)
{
    fields fl = {0};
    const struct kv *path = kv_find(kv, n, "path"), *path64 = kv_find(kv, n, "path_b64");
    const struct kv *err = kv_find(kv, n, "error"), *skipped = kv_find(kv, n, "skipped");
    if ((err && !err->is_null) || (skipped && skipped->is_true)) {
        p->skip = 1;
        return NH_OK;
    }
    nh_status st = set_string(p, &fl, 0, path->val, path->vn, path->is_null, 0, "path", msg, cap);
    if (st == NH_OK && path64)
        st = set_string(p, &fl, 0, path64->val, path64->vn, path64->is_null, 1, "path_b64", msg,
                        cap);
    if (st != NH_OK)
        return st;
    const struct kv *neural = kv_find(kv, n, "neural"), *fp = kv_find(kv, n, "model_fingerprint");
    const struct kv *pdq = kv_find(kv, n, "pdq"), *q = kv_find(kv, n, "pdq_quality");
    const struct kv *xxh = kv_find(kv, n, "xxh128");
    if (xxh && !xxh->is_null) {
        if (xxh->vn != 32 || nh_hex_decode(xxh->val, 32, p->digest, 16))
            return fail(msg, cap, "xxh128 must be 32 hex digits");
        p->entry.digest = p->digest;
    }
    finish(p);
    int first = 1;
    if (neural && !neural->is_null) {
        if (!neural_hex_len(neural->vn))
            return fail(msg, cap, "neural must be 2 to %u hex digits in pairs",
                        2 * NH_DB_HASH_MAX);
        if (!fp || fp->is_null || fp->vn != 16)
            return fail(msg, cap, "a neural hash needs its model_fingerprint (16 hex digits)");
        nh_db_entry *e = record_entry(p, first);
        e->kind = nh_kind_of(NH_KIND_NEURAL);
        e->kind.bits = (unsigned)neural->vn * 4;
        if (nh_hex_decode(fp->val, 16, e->kind.model, 8) ||
            nh_hex_decode(neural->val, neural->vn, (uint8_t *)e->hash, neural->vn / 2))
            return fail(msg, cap, "bad hex in neural or model_fingerprint");
        e->quality = -1;
        first = 0;
    }
    if (pdq && !pdq->is_null) {
        char tmp[8];
        char *end;
        if (!q || q->is_null || q->vn == 0 || q->vn >= sizeof tmp)
            return fail(msg, cap, "a pdq hash needs its pdq_quality");
        memcpy(tmp, q->val, q->vn);
        tmp[q->vn] = '\0';
        long qv = strtol(tmp, &end, 10);
        if (*end || qv < 0 || qv > 100)
            return fail(msg, cap, "pdq_quality must be an integer 0..100");
        nh_db_entry *e = record_entry(p, first);
        e->kind = nh_kind_of(NH_KIND_PDQ);
        if (pdq->vn != 64 || nh_hex_decode(pdq->val, 64, (uint8_t *)e->hash, 32))
            return fail(msg, cap, "pdq must be 64 hex digits");
        e->quality = (int)qv;
        first = 0;
    }
    if (p->entry.digest) {
        nh_db_entry *e = record_entry(p, first);
        e->kind = nh_kind_of(NH_KIND_DIGEST);
        memcpy((uint8_t *)e->hash, p->digest, 16);
        e->quality = -1;
        first = 0;
    }
    if (first)
        return fail(msg, cap, "a record line without hashes (neural, pdq, xxh128)");
    return NH_OK;
}

static nh_status parse_jsonl(const char *line, nhdb_parsed *p, char *msg, size_t cap)
{
    const char *s = line;
    fields fl = {0};
    size_t L = strlen(line);
    /* Keys and values are copied into one pool: together they are never longer than the
     * line, plus a NUL each. */
    char *pool = malloc(2 * L + 2);
    struct kv kv[64];
    size_t nkv = 0, used = 0;
    nh_status st = NH_OK;
    if (!pool) {
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
            int is_null = 0, is_true = 0;
            char *key = pool + used;
            WS();
            if (*s++ != '"' || json_str(&s, key, &kn)) {
                st = fail(msg, cap, "bad JSON key");
                goto cleanup;
            }
            if (memchr(key, '\0', kn)) {
                st = fail(msg, cap, "a JSON key holds a NUL character");
                goto cleanup;
            }
            used += kn + 1;
            char *val = pool + used;
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
            } else if (strncmp(s, "true", 4) == 0 || strncmp(s, "false", 5) == 0) {
                is_true = *s == 't';
                s += *s == 't' ? 4 : 5;
                is_null = 1;
            } else {
                st = fail(msg, cap, "unsupported JSON value for \"%s\"", key);
                goto cleanup;
            }
            val[vn] = '\0';
            used += vn + 1;
            if (nkv == sizeof kv / sizeof *kv) {
                st = fail(msg, cap, "more than %zu keys", sizeof kv / sizeof *kv);
                goto cleanup;
            }
            kv[nkv++] = (struct kv){key, val, vn, is_null, is_true};
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
    if (!kv_find(kv, nkv, "kind") && kv_find(kv, nkv, "path")) {
        st = parse_record(p, kv, nkv, msg, cap);
        goto cleanup;
    }
    for (size_t i = 0; i < nkv && st == NH_OK; i++)
        st = set_field(p, &fl, kv[i].key, kv[i].val, kv[i].vn, kv[i].is_null, msg, cap);
    if (st == NH_OK)
        st = check_fields(p, &fl, msg, cap);
cleanup:
    free(pool);
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

static nh_status parse_line(nhdb_fmt fmt, const char *line, const uint8_t *neural_model,
                            nhdb_parsed *p, char *msg, size_t cap)
{
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

/* The strings of an entry within nh_db_add's limit. */
static nh_status check_lengths(const nh_db_entry *e, char *msg, size_t cap)
{
    const char *names[3] = {"source", "label", "note"};
    const char *vals[3] = {e->source, e->label, e->note};
    for (int i = 0; i < 3; i++) {
        size_t n = vals[i] ? strlen(vals[i]) : 0;
        if (n > NH_DB_STR_MAX)
            return fail(msg, cap, "%s is %zu bytes, over the limit of %u", names[i], n,
                        NH_DB_STR_MAX);
    }
    return NH_OK;
}

nh_status nhdb_text_parse(nhdb_fmt fmt, const char *line, size_t len, const uint8_t *neural_model,
                          nhdb_parsed *p, char *msg, size_t cap)
{
    reset(p);
    const char *nul = memchr(line, '\0', len);
    if (nul)
        return fail(msg, cap, "a NUL byte at column %zu", (size_t)(nul - line) + 1);
    nh_status st = parse_line(fmt, line, neural_model, p, msg, cap);
    if (st != NH_OK || p->skip)
        return st;
    st = check_lengths(&p->entry, msg, cap);
    for (size_t k = 0; k < p->nextra && st == NH_OK; k++)
        st = check_lengths(&p->extra[k], msg, cap);
    return st;
}

/* ---- writing ---- */

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
        putc(',', f);
        nh_json_field(f, "source", r->source);
        putc(',', f);
        nh_json_field(f, "label", r->label);
        putc(',', f);
        nh_json_field(f, "note", r->note);
        fprintf(f, ",\"added\":%" PRId64 "}\n", r->added);
        break;
    case NHDB_FMT_CSV: {
        fprintf(f, "%s,%s,%s,%s,", nh_kind_name(r->kind.type), model, hex, digest);
        if (r->quality >= 0)
            fprintf(f, "%d", r->quality);
        putc(',', f);
        nh_csv_field(f, r->source);
        putc(',', f);
        nh_csv_field(f, r->label);
        putc(',', f);
        nh_csv_field(f, r->note);
        fprintf(f, ",%" PRId64 "\n", r->added);
        break;
    }
    default:
        return -1;
    }
    return ferror(f) ? -1 : 0;
}
