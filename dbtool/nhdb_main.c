/*
 * nhdb: command-line front end of libnhdb.
 *
 *   nhdb create DB          nhdb import DB FILE...   nhdb export DB
 *   nhdb query DB HASH...   nhdb stats DB            nhdb merge OUT SHARD...
 *   nhdb verify DB          nhdb upgrade DB
 *
 * Exit status: 0 success, 1 failure (bad input lines, inconsistent database), 2 usage
 * (and `query` on a set it cannot open, as `nhash audit`).
 * Every command takes --help. See docs/nhdb.md.
 *
 * LMDB does not check its B-tree pages, so a set damaged on disk can make it fault or fail an
 * assertion inside a read. The commands hold no state that such a fault could leave half
 * written (LMDB writes nothing before a commit, and its meta page last), so a fatal signal is
 * turned into a message and exit status 1 (`on_fatal_signal`) instead of a core dump.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <xxhash.h>

#include "nhdb/nhdb.h"
#include "nhash/out.h"
#include "text.h"

/* Set by `verify --json`: a fatal signal still prints its JSON report. */
static volatile sig_atomic_t g_json_verify;

static void write_str(int fd, const char *s)
{
    ssize_t r = write(fd, s, strlen(s));
    (void)r;
}

/* Async-signal-safe: write(2) and _exit(2) only. */
static void on_fatal_signal(int sig)
{
    static const struct {
        int sig;
        const char *name;
    } names[] = {{SIGSEGV, "SIGSEGV"}, {SIGBUS, "SIGBUS"}, {SIGABRT, "SIGABRT"},
                 {SIGFPE, "SIGFPE"},   {SIGILL, "SIGILL"}};
    const char *name = "?";
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (names[i].sig == sig)
            name = names[i].name;
    char num[4] = {(char)('0' + sig / 10 % 10), (char)('0' + sig % 10), 0, 0};
    if (sig < 10) {
        num[0] = num[1];
        num[1] = 0;
    }
    const char *why = "the set's LMDB structure is damaged (signal ";
    if (g_json_verify) {
        write_str(1, "{\"ok\":false,\"problems\":1,\"entries\":0,\"first\":\"");
        write_str(1, why);
        write_str(1, num);
        write_str(1, ")\"}\n");
    }
    write_str(2, "nhdb: ");
    write_str(2, why);
    write_str(2, num);
    write_str(2, ", ");
    write_str(2, name);
    write_str(2, ", while reading it): LMDB does not check its pages; restore the set from a "
                 "copy (or, if `nhdb verify` finds nothing, report a bug in nhdb)\n");
    _exit(1);
}

static void print_error(const nh_error *err)
{
    char buf[NH_ERROR_MSG_MAX + NH_ERROR_PATH_MAX + 64];
    fprintf(stderr, "nhdb: %s\n", nh_error_format(err, buf, sizeof buf));
}

/* A decimal integer min..max, digits only: no sign, space, exponent or trailing text. On
 * anything else says so (nhdb: --OPT takes an integer min..max, not 'S') and returns -1. */
static int parse_u(const char *opt, const char *s, unsigned long long min, unsigned long long max,
                   unsigned long long *out)
{
    char *end;
    errno = 0;
    unsigned long long v = *s >= '0' && *s <= '9' ? strtoull(s, &end, 10) : 0;
    if (*s < '0' || *s > '9' || errno || *end || v < min || v > max) {
        fprintf(stderr, "nhdb: --%s takes an integer %llu..%llu, not '%s'\n", opt, min, max, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* --model HEX or --model-file PATH (xxHash64 of the file content, canonical bytes). */
static int model_from_file(const char *path, uint8_t out[8])
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nhdb: %s: %s\n", path, strerror(errno));
        return -1;
    }
    XXH64_state_t *st = XXH64_createState();
    XXH64_reset(st, 0);
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        XXH64_update(st, buf, n);
    int bad = ferror(f);
    fclose(f);
    XXH64_canonical_t c;
    XXH64_canonicalFromHash(&c, XXH64_digest(st));
    XXH64_freeState(st);
    if (bad) {
        fprintf(stderr, "nhdb: %s: read error\n", path);
        return -1;
    }
    memcpy(out, c.digest, 8);
    return 0;
}

static int parse_model(const char *hex, uint8_t out[8])
{
    if (strlen(hex) != 16 || nh_hex_decode(hex, 16, out, 8)) {
        fprintf(stderr, "nhdb: --model takes 16 hex digits (xxHash64 of the model file)\n");
        return -1;
    }
    return 0;
}

/* The options of a command that takes one DB, --help, and --json where json is not NULL (*json
 * set to 1 when given). Returns -1 with *path set to go on, else the exit status. */
static int parse_db_command(int argc, char **argv, const char *help, int *json, const char **path)
{
    static const struct option with_json[] = {
        {"help", no_argument, 0, 'h'}, {"json", no_argument, 0, 'j'}, {0, 0, 0, 0}};
    static const struct option help_only[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "h", json ? with_json : help_only, NULL)) != -1) {
        if (c == 'h') {
            fputs(help, stdout);
            return 0;
        }
        if (c == 'j' && json) {
            *json = 1;
            continue;
        }
        fputs(help, stderr);
        return 2;
    }
    if (optind + 1 != argc) {
        fputs(help, stderr);
        return 2;
    }
    *path = argv[optind];
    return -1;
}

/* ---- create ---- */

static const char create_help[] =
    "usage: nhdb create DB [--neural-substrings N] [--pdq-substrings N]\n"
    "Create an empty database in directory DB (created if missing).\n"
    "  --neural-substrings N  MIH substrings for 96-bit hashes (3..32, default 4); other\n"
    "                         neural widths get about the same substring length\n"
    "  --pdq-substrings N     MIH substrings for 256-bit PDQ hashes (8..64, default 12)\n";

static int cmd_create(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, 0, 'h'},
                                       {"neural-substrings", required_argument, 0, 'n'},
                                       {"pdq-substrings", required_argument, 0, 'p'},
                                       {0, 0, 0, 0}};
    nh_db_create_opts o = {0};
    int c;
    unsigned long long v;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(create_help, stdout);
            return 0;
        case 'n':
        case 'p':
            /* the ranges nh_db_open accepts (0 would silently take the default) */
            if (c == 'n' ? parse_u("neural-substrings", optarg, 3, 32, &v)
                         : parse_u("pdq-substrings", optarg, 8, 64, &v))
                return 2;
            if (c == 'n')
                o.neural_substrings = (unsigned)v;
            else
                o.pdq_substrings = (unsigned)v;
            break;
        default:
            fputs(create_help, stderr);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fputs(create_help, stderr);
        return 2;
    }
    nh_error err = {0};
    nh_db *db = NULL;
    if (nh_db_open(argv[optind], NH_DB_OPEN_CREATE, &o, &db, &err)) {
        print_error(&err);
        return 1;
    }
    nh_db_close(db);
    return 0;
}

/* ---- import ---- */

static const char import_help[] =
    "usage: nhdb import DB FILE... [options]\n"
    "Import hash lists into DB (created if missing). FILE '-' reads standard input.\n"
    "  --format F        auto (default), neural, pdq, jsonl or csv\n"
    "                    neural: 24 hex digits [whitespace path] per line (nnhash.py);\n"
    "                    other widths by length (16 hex digits: 64 bits, 32: 128, 64: 256)\n"
    "                    pdq:    hash,quality,filename (Meta's pdq-photo-hasher)\n"
    "                    jsonl/csv: all fields, as nhdb export writes them\n"
    "  --model HEX       model fingerprint of a neural list (16 hex digits)\n"
    "  --model-file P    ... computed as xxHash64 of the model file P\n"
    "  --label L         label for entries that have none\n"
    "  --note N          note for entries that have none\n"
    "  --batch N         lines per transaction (default 100000)\n"
    "  --skip-bad        import the good lines and report the bad ones; by default a file\n"
    "                    with any malformed line is rejected whole and nothing is imported\n"
    "  --nosync          no fsync per transaction (safe against a killed process, not\n"
    "                    against power loss)\n"
    "  --json            print the summary as JSON\n"
    "Re-running an import adds nothing twice (same kind, hash and source) and resumes an\n"
    "interrupted import from its last committed batch.\n";

typedef struct import_opts {
    nhdb_fmt fmt;
    int have_model;
    uint8_t model[8];
    const char *label, *note;
    unsigned long long batch;
    int skip_bad, json;
} import_opts;

/* Progress record of an import job (little-endian):
 *   0 u64 byte offset of the next unread record   8 u64 line number of that record
 *  16 u64 entries added so far                    24 u64 entries already present so far
 *  32 u64 bad lines so far                        40 u64 file size
 *  48 u64 xxh64 of the first 64 KiB               */
#define PROGRESS_SIZE 56

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}
static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static uint64_t head_hash(FILE *f)
{
    char buf[65536];
    rewind(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    rewind(f);
    return XXH64(buf, n, 0);
}

/* Copy standard input to a temporary file, so it can be read twice. */
static FILE *spool_stdin(void)
{
    FILE *t = tmpfile();
    if (!t)
        return NULL;
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (fwrite(buf, 1, n, t) != n) {
            fclose(t);
            return NULL;
        }
    rewind(t);
    return t;
}

static int import_file(nh_db *db, const char *path, const import_opts *o)
{
    int ret = 1;
    FILE *f = NULL;
    char *line = NULL;
    size_t cap = 0, nl, len;
    nhdb_parsed p = {0};
    nh_error err = {0};
    char msg[256];
    uint64_t lineno = 1, added = 0, skipped = 0, bad = 0;
    int is_stdin = strcmp(path, "-") == 0;
    int writing = 0; /* in the import proper: a failure keeps the committed batches */
    char job[401] = "";

    f = is_stdin ? spool_stdin() : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nhdb: %s: %s\n", path, strerror(errno));
        goto cleanup;
    }
    nhdb_fmt fmt = o->fmt;
    if (fmt == NHDB_FMT_AUTO) {
        int r;
        while ((r = nhdb_text_read(f, NHDB_FMT_NEURAL, &line, &cap, &nl, NULL)) == 1) {
            const char *s = line;
            while (*s == ' ' || *s == '\t')
                s++;
            if (*s && *s != '#')
                break;
        }
        fmt = r == 1 ? nhdb_text_sniff(line) : NHDB_FMT_NEURAL;
        if (fmt == NHDB_FMT_AUTO) {
            fprintf(stderr, "nhdb: %s: cannot tell the format; use --format\n", path);
            goto cleanup;
        }
        rewind(f);
    }
    if (fmt == NHDB_FMT_NEURAL && !o->have_model) {
        fprintf(stderr, "nhdb: %s: a neural list needs --model HEX or --model-file PATH\n", path);
        goto cleanup;
    }
    const uint8_t *model = o->have_model ? o->model : NULL;

    /* Pass 1: validate, unless bad lines are to be skipped. */
    if (!o->skip_bad) {
        uint64_t ln = 1;
        int r;
        while ((r = nhdb_text_read(f, fmt, &line, &cap, &nl, &len)) == 1) {
            if (nhdb_text_parse(fmt, line, len, model, &p, msg, sizeof msg)) {
                if (bad < 20)
                    fprintf(stderr, "%s:%" PRIu64 ": %s\n", path, ln, msg);
                bad++;
            }
            ln += nl;
        }
        if (r < 0) {
            fprintf(stderr, "nhdb: %s: read error: %s\n", path, strerror(errno));
            goto cleanup;
        }
        if (bad) {
            fprintf(stderr,
                    "nhdb: %s: %" PRIu64 " malformed line%s; nothing imported (use "
                    "--skip-bad to import the rest)\n",
                    path, bad, bad == 1 ? "" : "s");
            goto cleanup;
        }
        rewind(f);
    }

    /* Resume from the progress record of an earlier, interrupted run of this file. */
    struct stat sb;
    uint64_t size = 0, hh = 0;
    if (!is_stdin) {
        char real[PATH_MAX];
        if (!realpath(path, real) || fstat(fileno(f), &sb)) {
            fprintf(stderr, "nhdb: %s: %s\n", path, strerror(errno));
            goto cleanup;
        }
        size = (uint64_t)sb.st_size;
        hh = head_hash(f);
        /* keyed by the file's absolute path, hashed to bound the key length */
        snprintf(job, sizeof job, "import:%016" PRIx64, (uint64_t)XXH64(real, strlen(real), 0));
        uint8_t rec[PROGRESS_SIZE];
        size_t n = 0;
        nh_status st = nh_db_get_progress(db, job, rec, sizeof rec, &n, &err);
        if (st == NH_OK && n == PROGRESS_SIZE && get64(rec + 40) == size && get64(rec + 48) == hh) {
            if (fseeko(f, (off_t)get64(rec), SEEK_SET)) {
                fprintf(stderr, "nhdb: %s: seek: %s\n", path, strerror(errno));
                goto cleanup;
            }
            lineno = get64(rec + 8);
            /* counts cover this run only; the bad-line count carries over */
            bad = get64(rec + 32);
            if (!o->json)
                fprintf(stderr, "nhdb: %s: resuming at line %" PRIu64 "\n", path, lineno);
        } else if (st != NH_OK && st != NH_ERR_NOT_FOUND) {
            print_error(&err);
            goto cleanup;
        }
    }

    writing = 1;
    if (nh_db_batch_begin(db, &err)) {
        print_error(&err);
        goto cleanup;
    }
    uint64_t in_batch = 0;
    for (;;) {
        int r = nhdb_text_read(f, fmt, &line, &cap, &nl, &len);
        if (r < 0) {
            fprintf(stderr, "nhdb: %s: read error: %s\n", path, strerror(errno));
            goto cleanup;
        }
        if (r == 1) {
            if (nhdb_text_parse(fmt, line, len, model, &p, msg, sizeof msg)) {
                fprintf(stderr, "%s:%" PRIu64 ": %s (skipped)\n", path, lineno, msg);
                bad++;
            } else if (!p.skip) {
                /* one entry, or a record line's entries (neural, pdq, digest) */
                for (size_t k = 0; k <= p.nextra; k++) {
                    nh_db_entry *e = k ? &p.extra[k - 1] : &p.entry;
                    if (!e->label[0] && o->label)
                        e->label = o->label;
                    if (!e->note[0] && o->note)
                        e->note = o->note;
                    if (nh_db_add(db, e, &err)) {
                        fprintf(stderr, "%s:%" PRIu64 ": ", path, lineno);
                        print_error(&err);
                        goto cleanup;
                    }
                    in_batch++;
                }
            }
            lineno += nl;
        }
        if (in_batch >= o->batch || r == 0) {
            uint64_t a = 0, s = 0;
            if (job[0]) {
                uint8_t rec[PROGRESS_SIZE];
                put64(rec, (uint64_t)ftello(f));
                put64(rec + 8, lineno);
                put64(rec + 16, added); /* before this batch */
                put64(rec + 24, skipped);
                put64(rec + 32, bad);
                put64(rec + 40, size);
                put64(rec + 48, hh);
                /* the last batch deletes the record: the job is complete */
                if (nh_db_batch_set_progress(db, job, rec, r == 0 ? 0 : sizeof rec, &err)) {
                    print_error(&err);
                    goto cleanup;
                }
            }
            if (nh_db_batch_commit(db, &a, &s, &err)) {
                print_error(&err);
                goto cleanup;
            }
            added += a;
            skipped += s;
            in_batch = 0;
            if (r == 0)
                break;
            if (nh_db_batch_begin(db, &err)) {
                print_error(&err);
                goto cleanup;
            }
        }
    }
    writing = 0;
    if (o->json) {
        putchar('{');
        nh_json_field(stdout, "file", path);
        printf(",\"format\":\"%s\",\"added\":%" PRIu64 ",\"present\":%" PRIu64
               ",\"bad_lines\":%" PRIu64 "}\n",
               nhdb_fmt_name(fmt), added, skipped, bad);
    } else {
        printf("%s: %" PRIu64 " added, %" PRIu64 " already present, %" PRIu64 " bad lines\n", path,
               added, skipped, bad);
    }
    ret = bad ? 1 : 0;
cleanup:
    if (writing) {
        /* a full disk, a read or write error: what was committed stays (and the progress
         * record with it, so that a second run of this file resumes) */
        if (is_stdin)
            fprintf(stderr,
                    "nhdb: %s: stopped; the %" PRIu64 " entries this run committed before the "
                    "error are kept\n",
                    path, added);
        else
            fprintf(stderr,
                    "nhdb: %s: stopped; the %" PRIu64 " entries this run committed before the "
                    "error are kept, and importing the file again resumes after them\n",
                    path, added);
    }
    nh_db_batch_abort(db);
    nhdb_parsed_free(&p);
    free(line);
    if (f)
        fclose(f);
    return ret;
}

/* Whether path exists (as anything) and holds an LMDB environment. */
static void set_state(const char *path, int *dir_exists, int *set_exists)
{
    struct stat sb;
    char data[PATH_MAX];
    *dir_exists = stat(path, &sb) == 0;
    snprintf(data, sizeof data, "%s/data.mdb", path);
    *set_exists = *dir_exists && stat(data, &sb) == 0;
}

/* Remove the files of a set this process created, and its directory when this process
 * created that too (rmdir fails, leaving it, when anything else is inside). */
static void remove_new_set(const char *path, int dir_existed)
{
    char f[PATH_MAX];
    snprintf(f, sizeof f, "%s/data.mdb", path);
    unlink(f);
    snprintf(f, sizeof f, "%s/lock.mdb", path);
    unlink(f);
    if (!dir_existed)
        rmdir(path);
}

static int cmd_import(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, 0, 'h'},
                                       {"format", required_argument, 0, 'f'},
                                       {"model", required_argument, 0, 'm'},
                                       {"model-file", required_argument, 0, 'M'},
                                       {"label", required_argument, 0, 'l'},
                                       {"note", required_argument, 0, 'n'},
                                       {"batch", required_argument, 0, 'b'},
                                       {"skip-bad", no_argument, 0, 's'},
                                       {"json", no_argument, 0, 'j'},
                                       {"nosync", no_argument, 0, 'S'},
                                       {0, 0, 0, 0}};
    import_opts o = {.batch = 100000};
    unsigned flags = NH_DB_OPEN_CREATE;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(import_help, stdout);
            return 0;
        case 'f':
            if (nhdb_fmt_parse(optarg, &o.fmt)) {
                fprintf(stderr, "nhdb: unknown format %s\n", optarg);
                return 2;
            }
            break;
        case 'm':
            if (parse_model(optarg, o.model))
                return 2;
            o.have_model = 1;
            break;
        case 'M':
            if (model_from_file(optarg, o.model))
                return 1;
            o.have_model = 1;
            break;
        case 'l':
        case 'n':
            if (strlen(optarg) > NH_DB_STR_MAX) {
                fprintf(stderr, "nhdb: --%s is %zu bytes, over the limit of %u\n",
                        c == 'l' ? "label" : "note", strlen(optarg), NH_DB_STR_MAX);
                return 2;
            }
            if (c == 'l')
                o.label = optarg;
            else
                o.note = optarg;
            break;
        case 'b':
            if (parse_u("batch", optarg, 1, 100000000, &o.batch))
                return 2;
            break;
        case 's':
            o.skip_bad = 1;
            break;
        case 'j':
            o.json = 1;
            break;
        case 'S':
            flags |= NH_DB_OPEN_NOSYNC;
            break;
        default:
            fputs(import_help, stderr);
            return 2;
        }
    }
    if (argc - optind < 2) {
        fputs(import_help, stderr);
        return 2;
    }
    const char *dbpath = argv[optind];
    int dir_existed, set_existed;
    set_state(dbpath, &dir_existed, &set_existed);
    nh_error err = {0};
    nh_db *db = NULL;
    if (nh_db_open(dbpath, flags, NULL, &db, &err)) {
        print_error(&err);
        if (!set_existed)
            remove_new_set(dbpath, dir_existed);
        return 1;
    }
    int ret = 0;
    for (int i = optind + 1; i < argc; i++)
        if (import_file(db, argv[i], &o))
            ret = 1;
    /* A failed import that created the set and committed nothing leaves no empty set. */
    nh_db_stats s;
    int empty = ret && !set_existed && nh_db_stats_get(db, &s, NULL) == NH_OK && s.entries == 0;
    nh_db_close(db);
    if (empty)
        remove_new_set(dbpath, dir_existed);
    return ret;
}

/* ---- export ---- */

static const char export_help[] =
    "usage: nhdb export DB [--format jsonl|csv|neural|pdq] [--kind K] [--model HEX] [-o FILE]\n"
    "Write the entries of DB, kind by kind in insertion order.\n"
    "  --format F   jsonl (default) and csv keep every field; neural writes 'hash path'\n"
    "               lines of neural entries, pdq writes hash,quality,filename of PDQ entries\n"
    "  --kind K     only neural, pdq or digest entries\n"
    "  --model HEX  only neural entries of this model\n"
    "  -o FILE      write to FILE instead of standard output\n";

typedef struct export_ctx {
    FILE *f;
    nhdb_fmt fmt;
    int want_type;
    int have_model;
    uint8_t model[8];
    int failed;
} export_ctx;

static int export_one(void *ctx, const nh_db_record *r)
{
    export_ctx *x = ctx;
    if (x->want_type && (int)r->kind.type != x->want_type)
        return 0;
    if (x->have_model && memcmp(r->kind.model, x->model, 8))
        return 0;
    if (nhdb_text_write(x->f, x->fmt, r)) {
        x->failed = 1;
        return 1;
    }
    return 0;
}

static int cmd_export(int argc, char **argv)
{
    static const struct option lo[] = {
        {"help", no_argument, 0, 'h'},         {"format", required_argument, 0, 'f'},
        {"kind", required_argument, 0, 'k'},   {"model", required_argument, 0, 'm'},
        {"output", required_argument, 0, 'o'}, {0, 0, 0, 0}};
    export_ctx x = {.fmt = NHDB_FMT_JSONL};
    const char *out = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "ho:", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(export_help, stdout);
            return 0;
        case 'f':
            if (nhdb_fmt_parse(optarg, &x.fmt) || x.fmt == NHDB_FMT_AUTO) {
                fprintf(stderr, "nhdb: unknown format %s\n", optarg);
                return 2;
            }
            break;
        case 'k': {
            nh_kind_type t;
            if (nh_kind_parse(optarg, &t)) {
                fprintf(stderr, "nhdb: unknown kind %s\n", optarg);
                return 2;
            }
            x.want_type = (int)t;
            break;
        }
        case 'm':
            if (parse_model(optarg, x.model))
                return 2;
            x.have_model = 1;
            x.want_type = NH_KIND_NEURAL;
            break;
        case 'o':
            out = optarg;
            break;
        default:
            fputs(export_help, stderr);
            return 2;
        }
    }
    if (optind + 1 != argc) {
        fputs(export_help, stderr);
        return 2;
    }
    if (x.fmt == NHDB_FMT_NEURAL)
        x.want_type = NH_KIND_NEURAL;
    if (x.fmt == NHDB_FMT_PDQ)
        x.want_type = NH_KIND_PDQ;
    nh_error err = {0};
    nh_db *db = NULL;
    nh_db_reader *rd = NULL;
    int ret = 1;
    x.f = out ? fopen(out, "w") : stdout;
    if (!x.f) {
        fprintf(stderr, "nhdb: %s: %s\n", out, strerror(errno));
        return 1;
    }
    if (nh_db_open(argv[optind], NH_DB_OPEN_READONLY, NULL, &db, &err) ||
        nh_db_reader_create(db, &rd, &err)) {
        print_error(&err);
        goto cleanup;
    }
    if (x.fmt == NHDB_FMT_CSV)
        nhdb_text_csv_header(x.f);
    nh_status st = nh_db_reader_foreach(rd, NULL, export_one, &x, &err);
    if (st && !x.failed) {
        print_error(&err);
        goto cleanup;
    }
    if (x.failed || fflush(x.f)) {
        fprintf(stderr, "nhdb: write error: %s\n", strerror(errno));
        goto cleanup;
    }
    ret = 0;
cleanup:
    nh_db_reader_destroy(rd);
    nh_db_close(db);
    if (out && x.f && fclose(x.f))
        ret = 1;
    return ret;
}

/* ---- query ---- */

static const char query_help[] =
    "usage: nhdb query DB [--radius R | --k K] [options] [HASH...]\n"
    "Find the entries near each HASH (hex). The kind follows from the length: 24 hex digits\n"
    "neural, 64 PDQ, 32 file digest; another neural width (16 hex digits for 64 bits, 32 for\n"
    "128, 64 for 256) when the database holds neural hashes of that width (of --model, when\n"
    "given) and, for 32 and 64 digits, --model is given or no digest or PDQ entries (else\n"
    "--kind neural).\n"
    "  --radius R     all entries within Hamming distance R (default 0)\n"
    "  --k K          the K nearest (ties by insertion order); --radius then caps distance\n"
    "  --model HEX    model of neural hashes (default: the database's only neural model of\n"
    "                 the query's width)\n"
    "  --kind K       force the kind (neural, pdq, digest)\n"
    "  --input FILE   read hashes from FILE, the first word of each line ('-': stdin)\n"
    "  --method M     auto (default), mih or linear\n"
    "  --json         one JSON object per query\n"
    "Text output: one line per match: query, distance, hash, source, label (tab-separated).\n";

typedef struct query_ctx {
    nh_db *db;
    nh_db_reader *rd;
    nh_db_query_opts qo;
    int json, forced_type, have_model;
    uint8_t model[8];
    uint64_t queries, matches;
} query_ctx;

static int query_one(query_ctx *q, const char *hex)
{
    size_t n = strlen(hex);
    nh_kind kind = {0};
    uint8_t h[NH_DB_HASH_MAX];
    nh_error err = {0};
    /* A neural hash's width is its length (n / 2 bytes); the neural kinds of that width. */
    unsigned nbits = n % 2 == 0 && n <= 2 * NH_DB_HASH_MAX ? (unsigned)n * 4 : 0;
    nh_db_kind_stats ks[64];
    size_t nk = nh_db_reader_kinds(q->rd, ks, 64), n_neural = 0, n_std = 0;
    nh_kind_type std = n == 24   ? NH_KIND_NEURAL
                       : n == 64 ? NH_KIND_PDQ
                       : n == 32 ? NH_KIND_DIGEST
                                 : (nh_kind_type)0;
    for (size_t i = 0; i < nk && i < 64; i++) {
        if (ks[i].kind.type == NH_KIND_NEURAL && ks[i].bits == nbits &&
            (!q->have_model || !memcmp(ks[i].kind.model, q->model, 8))) {
            if (!n_neural || memcmp(kind.model, ks[i].kind.model, 8))
                n_neural++;
            memcpy(kind.model, ks[i].kind.model, 8);
        }
        if (std && ks[i].kind.type == std)
            n_std++;
    }
    if (q->forced_type)
        kind.type = (nh_kind_type)q->forced_type;
    else if (n == 24 || (nbits && nh_kind_bits_valid(NH_KIND_NEURAL, nbits) && n_neural &&
                         (q->have_model || !n_std)))
        kind.type = NH_KIND_NEURAL; /* 24 digits, or a neural width this database holds */
    else
        kind.type = std;
    if (kind.type == NH_KIND_NEURAL)
        kind.bits = nbits;
    unsigned hb = nh_kind_type_bits(kind.type) ? nh_kind_bits(&kind) / 8 : 0;
    if (!hb || !nh_kind_bits_valid(kind.type, 8 * hb) || n != 2 * hb ||
        nh_hex_decode(hex, n, h, hb)) {
        fprintf(stderr, "nhdb: bad query hash '%s'\n", hex);
        return 1;
    }
    if (kind.type == NH_KIND_NEURAL) {
        if (q->have_model) {
            memcpy(kind.model, q->model, 8);
        } else if (n_neural > 1) {
            fprintf(stderr,
                    "nhdb: the database holds several neural models of %u bits; use --model\n",
                    nbits);
            return 1;
        }
    } else {
        memset(kind.model, 0, 8);
    }
    const nh_db_match *m;
    size_t nm;
    if (nh_db_query(q->rd, &kind, h, &q->qo, &m, &nm, &err)) {
        print_error(&err);
        return 1;
    }
    q->queries++;
    q->matches += nm;
    if (q->json) {
        printf("{\"query\":\"%s\",\"kind\":\"%s\",\"matches\":[", hex, nh_kind_name(kind.type));
    }
    for (size_t i = 0; i < nm; i++) {
        nh_db_record r;
        if (nh_db_reader_get(q->rd, m[i].id, &r, &err)) {
            print_error(&err);
            return 1;
        }
        char mh[2 * NH_DB_HASH_MAX + 1];
        nh_hex_encode(r.hash, hb, mh);
        if (q->json) {
            printf("%s{\"id\":%" PRIu64 ",\"distance\":%u,\"hash\":\"%s\",", i ? "," : "",
                   m[i].id, m[i].distance, mh);
            nh_json_field(stdout, "source", r.source);
            putchar(',');
            nh_json_field(stdout, "label", r.label);
            putchar(',');
            nh_json_field(stdout, "note", r.note);
            printf("}");
        } else {
            printf("%s\t%u\t%s\t%s\t%s\n", hex, m[i].distance, mh, r.source, r.label);
        }
    }
    if (q->json)
        printf("]}\n");
    return 0;
}

static int cmd_query(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, 0, 'h'},
                                       {"radius", required_argument, 0, 'r'},
                                       {"k", required_argument, 0, 'k'},
                                       {"model", required_argument, 0, 'm'},
                                       {"kind", required_argument, 0, 'K'},
                                       {"input", required_argument, 0, 'i'},
                                       {"method", required_argument, 0, 'M'},
                                       {"json", no_argument, 0, 'j'},
                                       {0, 0, 0, 0}};
    query_ctx q = {0};
    const char *input = NULL;
    unsigned long long v;
    int c;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(query_help, stdout);
            return 0;
        case 'r':
        case 'k':
            if (parse_u(c == 'r' ? "radius" : "k", optarg, 0, 1000000000, &v))
                return 2;
            if (c == 'r')
                q.qo.radius = (unsigned)v;
            else
                q.qo.k = (unsigned)v;
            break;
        case 'm':
            if (parse_model(optarg, q.model))
                return 2;
            q.have_model = 1;
            break;
        case 'K': {
            nh_kind_type t;
            if (nh_kind_parse(optarg, &t)) {
                fprintf(stderr, "nhdb: unknown kind %s\n", optarg);
                return 2;
            }
            q.forced_type = (int)t;
            break;
        }
        case 'i':
            input = optarg;
            break;
        case 'M':
            if (strcmp(optarg, "auto") == 0)
                q.qo.method = NH_DB_METHOD_AUTO;
            else if (strcmp(optarg, "mih") == 0)
                q.qo.method = NH_DB_METHOD_MIH;
            else if (strcmp(optarg, "linear") == 0)
                q.qo.method = NH_DB_METHOD_LINEAR;
            else {
                fprintf(stderr, "nhdb: --method takes auto, mih or linear\n");
                return 2;
            }
            break;
        case 'j':
            q.json = 1;
            break;
        default:
            fputs(query_help, stderr);
            return 2;
        }
    }
    if (argc - optind < 1 || (argc - optind < 2 && !input)) {
        fputs(query_help, stderr);
        return 2;
    }
    nh_error err = {0};
    int ret = 0;
    if (nh_db_open(argv[optind], NH_DB_OPEN_READONLY, NULL, &q.db, &err) ||
        nh_db_reader_create(q.db, &q.rd, &err)) {
        /* 2, as `nhash audit` exits when it cannot open the set */
        print_error(&err);
        nh_db_close(q.db);
        return 2;
    }
    for (int i = optind + 1; i < argc; i++)
        ret |= query_one(&q, argv[i]);
    if (input) {
        FILE *f = strcmp(input, "-") == 0 ? stdin : fopen(input, "r");
        if (!f) {
            fprintf(stderr, "nhdb: %s: %s\n", input, strerror(errno));
            ret = 1;
        } else {
            char *line = NULL;
            size_t cap = 0, nl;
            while (nhdb_text_read(f, NHDB_FMT_NEURAL, &line, &cap, &nl, NULL) == 1) {
                char *s = line;
                while (*s == ' ' || *s == '\t')
                    s++;
                if (!*s || *s == '#')
                    continue;
                size_t w = strcspn(s, " \t,");
                s[w] = '\0';
                ret |= query_one(&q, s);
            }
            free(line);
            if (f != stdin)
                fclose(f);
        }
    }
    nh_db_reader_destroy(q.rd);
    nh_db_close(q.db);
    return ret;
}

/* ---- stats ---- */

static const char stats_help[] = "usage: nhdb stats DB [--json]\n"
                                 "Schema version, entries per kind, map and file sizes.\n";

static int cmd_stats(int argc, char **argv)
{
    int json = 0;
    const char *path = NULL;
    int rc = parse_db_command(argc, argv, stats_help, &json, &path);
    if (rc >= 0)
        return rc;
    nh_error err = {0};
    nh_db *db = NULL;
    nh_db_stats s;
    if (nh_db_open(path, NH_DB_OPEN_READONLY, NULL, &db, &err) ||
        nh_db_stats_get(db, &s, &err)) {
        print_error(&err);
        nh_db_close(db);
        return 1;
    }
    nh_db_close(db);
    if (json)
        printf("{\"schema\":%u,\"entries\":%" PRIu64 ",\"map_bytes\":%" PRIu64
               ",\"used_bytes\":%" PRIu64 ",\"mih_rows\":%" PRIu64 ",\"mih_runs\":%" PRIu64
               ",\"dedupe_runs\":%" PRIu64 ",\"digest_rows\":%" PRIu64 ",\"kinds\":[",
               s.schema_version, s.entries, s.mapsize, s.used_bytes, s.mih_rows, s.mih_runs,
               s.dedupe_runs, s.digests);
    else
        printf("schema %u\nentries %" PRIu64 "\nmap %" PRIu64 " bytes, %" PRIu64
               " in use\nmih postings %" PRIu64 " in %" PRIu64 " runs\ndedupe runs %" PRIu64
               "\ndigest rows %" PRIu64 "\n",
               s.schema_version, s.entries, s.mapsize, s.used_bytes, s.mih_rows, s.mih_runs,
               s.dedupe_runs, s.digests);
    size_t nk = s.n_kinds < 64 ? s.n_kinds : 64;
    for (size_t i = 0; i < nk; i++) {
        const nh_db_kind_stats *k = &s.kinds[i];
        char model[17] = "";
        if (k->kind.type == NH_KIND_NEURAL)
            nh_hex_encode(k->kind.model, 8, model);
        if (json)
            printf("%s{\"id\":%u,\"kind\":\"%s\",\"model\":%s%s%s,\"bits\":%u,\"substrings\":%u,"
                   "\"count\":%" PRIu64 "}",
                   i ? "," : "", k->kind_id, nh_kind_name(k->kind.type), model[0] ? "\"" : "",
                   model[0] ? model : "null", model[0] ? "\"" : "", k->bits, k->substrings,
                   k->count);
        else
            printf("kind %u %s%s%s: %" PRIu64 " entries, %u bits, %u substrings\n", k->kind_id,
                   nh_kind_name(k->kind.type), model[0] ? " model " : "", model, k->count,
                   k->bits, k->substrings);
    }
    if (json)
        printf("]}\n");
    return 0;
}

/* ---- merge ---- */

static const char merge_help[] =
    "usage: nhdb merge OUT SHARD... [--json] [--nosync]\n"
    "Add every entry of each SHARD database to OUT (created if missing), keeping all fields;\n"
    "entries with the same kind, hash and source are stored once.\n";

typedef struct merge_ctx {
    nh_db *out;
    nh_error *err;
    uint64_t added, present;
    int failed;
} merge_ctx;

static int merge_flush(merge_ctx *m)
{
    uint64_t a = 0, s = 0;
    if (nh_db_batch_commit(m->out, &a, &s, m->err) || nh_db_batch_begin(m->out, m->err))
        return -1;
    m->added += a;
    m->present += s;
    return 0;
}

static int merge_one(void *ctx, const nh_db_record *r)
{
    merge_ctx *m = ctx;
    nh_db_entry e = {.kind = r->kind,
                     .hash = r->hash,
                     .digest = r->digest,
                     .quality = r->quality,
                     .source = r->source,
                     .label = r->label,
                     .note = r->note,
                     .added = r->added};
    if (nh_db_add(m->out, &e, m->err) || (nh_db_batch_size(m->out) >= 200000 && merge_flush(m))) {
        m->failed = 1;
        return 1;
    }
    return 0;
}

static int cmd_merge(int argc, char **argv)
{
    static const struct option lo[] = {{"help", no_argument, 0, 'h'},
                                       {"json", no_argument, 0, 'j'},
                                       {"nosync", no_argument, 0, 'S'},
                                       {0, 0, 0, 0}};
    int json = 0, c;
    unsigned flags = NH_DB_OPEN_CREATE;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'h':
            fputs(merge_help, stdout);
            return 0;
        case 'j':
            json = 1;
            break;
        case 'S':
            flags |= NH_DB_OPEN_NOSYNC;
            break;
        default:
            fputs(merge_help, stderr);
            return 2;
        }
    }
    if (argc - optind < 2) {
        fputs(merge_help, stderr);
        return 2;
    }
    nh_error err = {0};
    merge_ctx m = {.err = &err};
    int ret = 1;
    if (nh_db_open(argv[optind], flags, NULL, &m.out, &err)) {
        print_error(&err);
        return 1;
    }
    for (int i = optind + 1; i < argc; i++) {
        nh_db *in = NULL;
        nh_db_reader *rd = NULL;
        nh_status st = nh_db_open(argv[i], NH_DB_OPEN_READONLY, NULL, &in, &err);
        if (!st)
            st = nh_db_reader_create(in, &rd, &err);
        if (!st)
            st = nh_db_batch_begin(m.out, &err);
        if (!st)
            st = nh_db_reader_foreach(rd, NULL, merge_one, &m, &err);
        if (!st) {
            uint64_t a = 0, s = 0;
            st = nh_db_batch_commit(m.out, &a, &s, &err);
            m.added += a;
            m.present += s;
        }
        nh_db_batch_abort(m.out);
        nh_db_reader_destroy(rd);
        nh_db_close(in);
        if (st) {
            print_error(&err);
            goto cleanup;
        }
    }
    if (json)
        printf("{\"added\":%" PRIu64 ",\"present\":%" PRIu64 "}\n", m.added, m.present);
    else
        printf("%" PRIu64 " added, %" PRIu64 " already present\n", m.added, m.present);
    ret = 0;
cleanup:
    nh_db_close(m.out);
    return ret;
}

/* ---- verify ---- */

static const char verify_help[] =
    "usage: nhdb verify DB [--json]\n"
    "Check that every table agrees with the others (records decode, per-kind counts, packed\n"
    "arrays, MIH, dedupe and digest rows), that every value matches its checksum (schema 3)\n"
    "and that LMDB's meta pages are intact. Exit status 1 when anything is inconsistent or\n"
    "damaged, LMDB's own structure included.\n";

/* Open DB (a writable open upgrades an older schema), verify it and report as `verify` does.
 * Returns the exit status. */
static int verify_report(const char *path, unsigned open_flags, int json)
{
    nh_error err = {0};
    nh_db *db = NULL;
    uint64_t problems = 0;
    if (nh_db_open(path, open_flags, NULL, &db, &err)) {
        print_error(&err);
        return 1;
    }
    nh_status st = NH_OK;
    if (!(open_flags & NH_DB_OPEN_READONLY) && (st = nh_db_upgrade(db, &err))) {
        print_error(&err);
        nh_db_close(db);
        return 1;
    }
    st = nh_db_verify(db, &problems, &err);
    nh_db_stats s = {0};
    nh_db_stats_get(db, &s, NULL);
    nh_db_close(db);
    if (json) {
        printf("{\"ok\":%s,\"problems\":%" PRIu64 ",\"entries\":%" PRIu64
               ",\"schema\":%u,\"first\":",
               st ? "false" : "true", problems, s.entries, s.schema_version);
        nh_json_string(stdout, st ? err.msg : "");
        printf("}\n");
    } else if (st) {
        print_error(&err);
        fprintf(stderr, "nhdb: %" PRIu64 " problem%s\n", problems, problems == 1 ? "" : "s");
    } else if (s.schema_version < NH_DB_SCHEMA_VERSION) {
        printf("ok: %" PRIu64 " entries consistent (schema %u: no checksums, so damage that "
               "keeps the tables consistent goes unseen; `nhdb upgrade %s` adds them)\n",
               s.entries, s.schema_version, path);
    } else {
        printf("ok: %" PRIu64 " entries consistent, every checksum matches\n", s.entries);
    }
    return st ? 1 : 0;
}

static int cmd_verify(int argc, char **argv)
{
    int json = 0;
    const char *path = NULL;
    int rc = parse_db_command(argc, argv, verify_help, &json, &path);
    if (rc >= 0)
        return rc;
    g_json_verify = json;
    return verify_report(path, NH_DB_OPEN_READONLY, json);
}

static const char upgrade_help[] =
    "usage: nhdb upgrade DB\n"
    "Bring a database written by an older nhdb to this build's schema, then verify it.\n"
    "Version 1 -> 2: the MIH and dedupe rows become runs, rebuilt from the packed hashes and\n"
    "entry records (any command that opens a version-1 set for writing does this; read-only\n"
    "commands ask for it first). Version 2 -> 3: every value gets its checksum. Each step is\n"
    "one transaction; entries, ids and metadata are unchanged.\n";

static int cmd_upgrade(int argc, char **argv)
{
    const char *path = NULL;
    int rc = parse_db_command(argc, argv, upgrade_help, NULL, &path);
    if (rc >= 0)
        return rc;
    return verify_report(path, 0, 0); /* a writable open upgrades */
}

static const char main_help[] = "usage: nhdb COMMAND [options] ...\n"
                                "The LMDB hash-set database with multi-index Hamming search.\n"
                                "  create   create an empty database\n"
                                "  import   import NeuralHash lists, PDQ CSV, JSONL or CSV\n"
                                "  export   write entries as JSONL, CSV, NeuralHash or PDQ lists\n"
                                "  query    radius or k-nearest search for one or many hashes\n"
                                "  stats    counts and sizes\n"
                                "  merge    combine shard databases into one, deduplicating\n"
                                "  verify   check that every table is consistent with the others\n"
                                "  upgrade  bring a database of an older nhdb to this schema\n"
                                "Run 'nhdb COMMAND --help' for a command's options.\n";

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"create", cmd_create}, {"import", cmd_import}, {"export", cmd_export},
                {"query", cmd_query},   {"stats", cmd_stats},   {"merge", cmd_merge},
                {"verify", cmd_verify}, {"upgrade", cmd_upgrade}};
    if (argc < 2) {
        fputs(main_help, stderr);
        return 2;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_fatal_signal;
    sa.sa_flags = (int)SA_RESETHAND; /* a fault inside the handler ends the process */
    sigemptyset(&sa.sa_mask);
    const int fatal[] = {SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL};
    for (size_t i = 0; i < sizeof fatal / sizeof fatal[0]; i++)
        sigaction(fatal[i], &sa, NULL);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(main_help, stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        if (strcmp(argv[1], cmds[i].name) == 0)
            return cmds[i].fn(argc - 1, argv + 1);
    fprintf(stderr, "nhdb: unknown command '%s'\n", argv[1]);
    fputs(main_help, stderr);
    return 2;
}
