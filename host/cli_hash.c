/*
 * nhash hash: the main job. Hash files, folders and path lists with the neural network,
 * PDQ and/or file digests; one record per file on stdout, errors on stderr (and as error
 * records in JSONL), a progress line on a terminal.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "cli_out.h"
#include "nhash/pipeline.h"
#include "cli_db.h"

int nh_cli_hash(int argc, char **argv);

enum out_format { OUT_HEX, OUT_BASE64, OUT_JSONL, OUT_CSV };

/* The signal that asked to stop (SIGINT, SIGTERM), 0 while none has. */
static volatile sig_atomic_t g_stop;

struct hash_ctx {
    enum out_format fmt;
    unsigned kinds;
    int progress;
    size_t total;            /* 0 = unknown */
    double t0, last_draw;
    size_t done, failed;
    int placeholder;
    const char *model_name;
    char fingerprint[17];
    nh_cli_db *db;
    const char *label, *note;
    int db_failed;           /* the set refused an add or a commit: db_err says why */
    nh_error db_err;
    int out_errno;           /* writing stdout failed with this errno */
};

static void print_hash(FILE *f, const uint8_t *h, size_t n, enum out_format fmt)
{
    char buf[512];
    if (fmt == OUT_BASE64)
        nh_base64_encode(h, n, buf);
    else
        nh_hex_encode(h, n, buf);
    fputs(buf, f);
}

static void draw_progress(struct hash_ctx *c, int final)
{
    double now = nh_time_now();
    if (!final && now - c->last_draw < 0.25)
        return;
    c->last_draw = now;
    double el = now - c->t0, rate = el > 0 ? (double)c->done / el : 0;
    char eta[32] = "";
    if (c->total && rate > 0 && c->done < c->total) {
        double s = (double)(c->total - c->done) / rate;
        snprintf(eta, sizeof eta, ", ETA %dm%02ds", (int)(s / 60), (int)s % 60);
    }
    if (c->total)
        fprintf(stderr, "\r\033[K%zu/%zu files, %.1f images/s, %zu errors%s", c->done, c->total,
                rate, c->failed, eta);
    else
        fprintf(stderr, "\r\033[K%zu files, %.1f images/s, %zu errors", c->done, rate, c->failed);
    if (final)
        fputc('\n', stderr);
}

static int on_record(const nh_record *r, void *user)
{
    struct hash_ctx *c = user;
    c->done++;
    char ebuf[2048];
    if (r->status != NH_OK) {
        c->failed++;
        if (c->progress)
            fprintf(stderr, "\r\033[K");
        fprintf(stderr, "nhash: %s\n", nh_error_format(&r->err, ebuf, sizeof ebuf));
    }
    const nh_hash *neural = nh_record_hash(r, NH_KIND_NEURAL, NH_VARIANT_ORIGINAL);
    const nh_hash *pdq = nh_record_hash(r, NH_KIND_PDQ, NH_VARIANT_ORIGINAL);
    const nh_hash *digest = nh_record_hash(r, NH_KIND_DIGEST, NH_VARIANT_ORIGINAL);
    switch (c->fmt) {
    case OUT_HEX:
    case OUT_BASE64: {
        if (r->status != NH_OK)
            break;
        int esc = nh_text_path_needs_escape(r->path);
        if (esc)
            fputc('\\', stdout);
        int first = 1;
        if (neural) {
            print_hash(stdout, neural->bytes, nh_hash_size(neural), c->fmt);
            first = 0;
        }
        if (pdq) {
            if (!first)
                fputc(' ', stdout);
            print_hash(stdout, pdq->bytes, 32, c->fmt);
            printf(" %d", pdq->quality);
            first = 0;
        }
        if (digest && (c->kinds & NH_KIND_BIT(NH_KIND_DIGEST))) {
            if (!first)
                fputc(' ', stdout);
            print_hash(stdout, digest->bytes, 16, c->fmt);
        }
        fputs("  ", stdout);
        nh_text_path(stdout, r->path, esc);
        fputc('\n', stdout);
        break;
    }
    case OUT_JSONL:
        fputc('{', stdout);
        nh_json_field(stdout, "path", r->path);
        if (r->status != NH_OK) {
            printf(",\"error\":\"%s\",\"message\":", nh_status_name(r->status));
            nh_error_format(&r->err, ebuf, sizeof ebuf);
            nh_json_string(stdout, r->err.msg[0] ? r->err.msg : ebuf);
            fputs("}\n", stdout);
            break;
        }
        if (neural) {
            char h[2 * NH_NEURAL_MAX_BYTES + 1], b[NH_NEURAL_MAX_BYTES * 2];
            nh_hex_encode(neural->bytes, nh_hash_size(neural), h);
            nh_base64_encode(neural->bytes, nh_hash_size(neural), b);
            printf(",\"neural\":\"%s\",\"neural_b64\":\"%s\",\"min_abs_score\":%.6g,\"model\":",
                   h, b, neural->margin);
            nh_json_string(stdout, c->model_name ? c->model_name : "");
            printf(",\"model_fingerprint\":\"%s\"", c->fingerprint);
            if (c->placeholder)
                fputs(",\"placeholder_model\":true", stdout);
        }
        if (pdq) {
            char h[65];
            nh_hex_encode(pdq->bytes, 32, h);
            printf(",\"pdq\":\"%s\",\"pdq_quality\":%d%s", h, pdq->quality,
                   pdq->quality < 50 ? ",\"pdq_unreliable\":true" : "");
        }
        if (digest) {
            char h[33];
            nh_hex_encode(digest->bytes, 16, h);
            printf(",\"xxh128\":\"%s\"", h);
        }
        if (r->skipped)
            fputs(",\"skipped\":true", stdout);
        if (r->src_width)
            printf(",\"width\":%d,\"height\":%d", r->src_width, r->src_height);
        fputs("}\n", stdout);
        break;
    case OUT_CSV: {
        char h[2 * NH_NEURAL_MAX_BYTES + 1] = "", p[65] = "", d[33] = "", q[16] = "";
        if (neural)
            nh_hex_encode(neural->bytes, nh_hash_size(neural), h);
        if (pdq) {
            nh_hex_encode(pdq->bytes, 32, p);
            snprintf(q, sizeof q, "%d", pdq->quality);
        }
        if (digest)
            nh_hex_encode(digest->bytes, 16, d);
        nh_csv_field(stdout, r->path);
        printf(",%s,%s,%s,%s,", h, p, q, d);
        if (r->status != NH_OK)
            nh_csv_field(stdout, nh_error_format(&r->err, ebuf, sizeof ebuf));
        fputc('\n', stdout);
        break;
    }
    }
    if (c->progress)
        draw_progress(c, 0);
    if (c->db && nh_cli_db_add(c->db, r, c->label, c->note, &c->db_err) != NH_OK) {
        c->db_failed = 1;
        return 1;
    }
    /* Each record leaves at once: a consumer downstream (or a kill) sees whole records. */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        c->out_errno = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nhash hash [options] PATH...\n\n"
            "Hash image files. PATH is a file, a folder (walked recursively, sorted), or '-'\n"
            "to read a list of paths from stdin (one per line; -0 for NUL-separated, as\n"
            "`find ... -print0` writes). One record per file goes to stdout in input order;\n"
            "errors go to stderr (and into the records in jsonl/csv) and never stop the run.\n\n"
            "  --algo LIST         neural, pdq, digest, comma-separated (default: neural)\n"
            "  --model FILE        .nhm model (default: $NH_MODEL or models/default.nhm, nhash's own\n"
            "                      open model, trained on a small photo set: see docs/model-card.md;\n"
            "                      its hashes match nothing made with Apple's NeuralHash)\n"
            "  --format F          hex (default), base64, jsonl, csv\n"
            "  -0, --null          stdin path list is NUL-separated\n"
            "  --batch N           images per network batch (default 16)\n"
            "  --threads N         decode workers (default: all cores)\n"
            "  --backend cl|ref    network on OpenCL (default) or the plain-C reference\n"
            "  --platform P, --device D   OpenCL choice (index or name part; or NH_CL_PLATFORM,\n"
            "                      NH_CL_DEVICE)\n"
            "  --decode compat|fast  neural input: Pillow-exact (default) or shrink-on-load\n"
            "  --autorotate        fast decode: apply EXIF orientation\n"
            "  --pdq-fast          PDQ input by shrink-on-load instead of the reference path\n"
            "  --pdq-backend B     auto (default: the OpenCL device when it is a GPU that gives\n"
            "                      the reference's bits, else C on the decode workers), c, cl\n"
            "  --allow-untrusted   allow libvips loaders marked untrusted\n"
            "  --max-pixels N      refuse images over N pixels (default 100000000)\n"
            "  --progress, --no-progress   progress line on stderr (default: when a terminal)\n"
            "  --db DIR            also add the hashes to the nhdb hash set DIR (created when\n"
            "                      missing) with each file's path; files whose digest the set\n"
            "                      already holds (among this model's entries when neural hashes\n"
            "                      are computed) are skipped, so a re-run resumes an interrupted\n"
            "                      build\n"
            "  --label L, --note N label and note stored with each entry\n\n"
            "hex/base64 lines: [NEURAL] [PDQ QUALITY] [XXH128]  PATH. A path with a backslash\n"
            "or any control character is escaped and its line starts with '\\', as sha256sum\n"
            "does: \\\\ \\n \\r \\t, and \\xHH for the other bytes 0x00-0x1f and 0x7f.\n"
            "jsonl escapes every control character (\\uXXXX); csv columns\n"
            "path,neural,pdq,pdq_quality,xxh128,error keep a path's exact bytes, RFC 4180-quoted.\n"
            "Exit status: 0 all files hashed, 1 some failed, 2 usage, set-up, output or database\n"
            "error (a full disk: what was committed stays), 130 interrupted by Ctrl-C, 143 by\n"
            "SIGTERM (either, once or again, finishes the batch in flight, writes it out and\n"
            "commits it with --db).\n");
}

/* Count files under the arguments when no stdin list is involved, for the ETA. */
static size_t count_inputs(char **paths, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(paths[i], "-"))
            return 0;
    nh_input *in = NULL;
    if (nh_input_create(paths, n, 0, &in, NULL) != NH_OK)
        return 0;
    size_t count = 0;
    char *p;
    nh_error e;
    while (nh_input_next(in, &p, &e) == NH_OK) {
        free(p);
        count++;
    }
    nh_input_destroy(in);
    return count;
}

int nh_cli_hash(int argc, char **argv)
{
    nh_pipeline_opts o;
    nh_pipeline_opts_default(&o);
    struct hash_ctx c;
    memset(&c, 0, sizeof c);
    int nul = 0, progress = -1;
    static const struct option lo[] = {
        {"algo", required_argument, 0, 'a'},   {"model", required_argument, 0, 'm'},
        {"format", required_argument, 0, 'f'}, {"null", no_argument, 0, '0'},
        {"batch", required_argument, 0, 'b'},  {"threads", required_argument, 0, 't'},
        {"backend", required_argument, 0, 'B'}, {"platform", required_argument, 0, 'P'},
        {"device", required_argument, 0, 'D'}, {"decode", required_argument, 0, 'd'},
        {"autorotate", no_argument, 0, 'r'},   {"pdq-fast", no_argument, 0, 'q'},
        {"allow-untrusted", no_argument, 0, 'u'}, {"max-pixels", required_argument, 0, 'x'},
        {"progress", no_argument, 0, 'g'},     {"no-progress", no_argument, 0, 'G'},
        {"db", required_argument, 0, 'S'},     {"label", required_argument, 0, 'L'},
        {"note", required_argument, 0, 'N'},   {"pdq-backend", required_argument, 0, 'Q'},
        {"help", no_argument, 0, 'h'},         {0, 0, 0, 0}};
    const char *db_dir = NULL;
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "0h", lo, NULL)) != -1) {
        switch (ch) {
        case 'a':
            if (nh_kind_parse_list(optarg, &o.kinds) != NH_OK) {
                fprintf(stderr, "nhash hash: unknown --algo '%s' (neural, pdq, digest)\n", optarg);
                return 2;
            }
            break;
        case 'm': o.model_path = optarg; break;
        case 'f':
            if (!strcmp(optarg, "hex"))
                c.fmt = OUT_HEX;
            else if (!strcmp(optarg, "base64"))
                c.fmt = OUT_BASE64;
            else if (!strcmp(optarg, "jsonl"))
                c.fmt = OUT_JSONL;
            else if (!strcmp(optarg, "csv"))
                c.fmt = OUT_CSV;
            else {
                fprintf(stderr, "nhash hash: unknown --format '%s'\n", optarg);
                return 2;
            }
            break;
        case '0': nul = 1; break;
        case 'r': o.decode.autorotate = 1; break;
        case 'q': o.pdq_fast = 1; break;
        case 'g': progress = 1; break;
        case 'G': progress = 0; break;
        case 'S': db_dir = optarg; break;
        case 'L': c.label = optarg; break;
        case 'N': c.note = optarg; break;
        case 'h': usage(stdout); return 0;
        default:
            /* the options every pipeline command shares */
            switch (nh_cli_pipeline_option("nhash hash", ch, optarg, &o)) {
            case 0: break;
            case 2: return 2;
            default: usage(stderr); return 2;
            }
            break;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    char **paths = argv + optind;
    size_t npaths = (size_t)(argc - optind);
    c.kinds = o.kinds;
    c.progress = progress >= 0 ? progress : isatty(2);
    o.stop = &g_stop;
    nh_error err;
    nh_error_clear(&err);
    char ebuf[4096];
    nh_pipeline *p = NULL;
    if (db_dir) {
        /* Resuming needs every file's digest; the set opens once the model (and so its
         * fingerprint) is known, below. */
        o.kinds |= NH_KIND_BIT(NH_KIND_DIGEST);
    }
    if (nh_pipeline_create(&o, &p, &err) != NH_OK) {
        fprintf(stderr, "nhash hash: %s\n", nh_error_format(&err, ebuf, sizeof ebuf));
        return 2;
    }
    c.model_name = nh_pipeline_model_name(p);
    c.placeholder = nh_pipeline_model_is_placeholder(p);
    snprintf(c.fingerprint, sizeof c.fingerprint, "%016llx",
             (unsigned long long)nh_pipeline_model_fingerprint(p));
    if ((o.kinds & NH_KIND_BIT(NH_KIND_NEURAL)) && c.placeholder)
        fprintf(stderr,
                "nhash: model '%s' is the untrained placeholder: its hashes are stable but\n"
                "       match no published hash set (use --model for a real model)\n",
                c.model_name);
    if (db_dir) {
        nh_kind nk;
        int has_neural = nh_pipeline_kind(p, NH_KIND_NEURAL, &nk) == NH_OK;
        if (nh_cli_db_open(db_dir, 1, has_neural ? &nk : NULL, &c.db, &err) != NH_OK) {
            fprintf(stderr, "nhash hash: %s\n", nh_error_format(&err, ebuf, sizeof ebuf));
            nh_pipeline_destroy(p);
            return 2;
        }
        nh_pipeline_set_skip(p, nh_cli_db_skip, c.db);
    }
    if (c.fmt == OUT_CSV)
        printf("path,neural,pdq,pdq_quality,xxh128,error\n");
    nh_input *in = NULL;
    if (nh_input_create(paths, npaths, nul, &in, &err) != NH_OK) {
        nh_pipeline_destroy(p);
        return 2;
    }
    if (c.progress)
        c.total = count_inputs(paths, npaths);
    nh_cli_signals_install(&g_stop);
    c.t0 = nh_time_now();
    nh_pipeline_stats stats;
    nh_status st = nh_pipeline_run(p, in, on_record, &c, &stats, &err);
    if (fflush(stdout) != 0 && !c.out_errno)
        c.out_errno = errno ? errno : EIO;
    if (c.progress)
        draw_progress(&c, 1);
    int rc = stats.failed ? 1 : 0;
    /* The pipeline says NH_ERR_INTERRUPTED both for a signal and for on_record asking to
     * stop; only a signal, with nothing else gone wrong, is an interruption. */
    int failed_here = c.db_failed || c.out_errno;
    if (c.out_errno) {
        fprintf(stderr, "nhash hash: cannot write the records: %s\n", strerror(c.out_errno));
        rc = 2;
    }
    if (c.db) {
        uint64_t added = 0, dupes = 0;
        /* On a failed add the batch in flight is lost (aborted at close); what earlier
         * commits stored stays, and the counts say how much that is. */
        if (c.db_failed || nh_cli_db_flush(c.db, &added, &dupes, &c.db_err) != NH_OK) {
            if (c.db_failed)
                nh_cli_db_committed(c.db, &added, &dupes);
            fprintf(stderr, "nhash hash: database: %s\n",
                    nh_error_format(&c.db_err, ebuf, sizeof ebuf));
            failed_here = 1;
            rc = 2;
        }
        fprintf(stderr, "nhash: %s: %llu entries %s, %llu already present, %zu files skipped "
                        "(digest known)\n",
                db_dir, (unsigned long long)added,
                failed_here ? "committed before the failure" : "added",
                (unsigned long long)dupes, stats.skipped);
        nh_cli_db_close(c.db);
    }
    if (failed_here) {
        fprintf(stderr, "nhash hash: stopped after %zu files (%zu failed)\n", stats.files,
                stats.failed);
    } else if (st == NH_ERR_INTERRUPTED) {
        fprintf(stderr, "nhash: interrupted by %s: %zu files done (%zu failed), written out%s\n",
                g_stop == SIGTERM ? "SIGTERM" : "SIGINT", stats.files, stats.failed,
                c.db ? " and committed" : "");
        rc = 128 + (g_stop ? (int)g_stop : SIGINT);
    } else if (st != NH_OK) {
        fprintf(stderr, "nhash hash: stopped: %s\n", nh_error_format(&err, ebuf, sizeof ebuf));
        rc = 2;
    }
    if (c.progress || getenv("NH_STATS"))
        fprintf(stderr, "nhash: %zu files, %zu hashed, %zu skipped, %zu failed in %.2fs (%.1f images/s)\n",
                stats.files, stats.ok, stats.skipped, stats.failed, stats.seconds,
                stats.seconds > 0 ? (double)stats.files / stats.seconds : 0.0);
    nh_input_destroy(in);
    nh_pipeline_destroy(p);
    return rc;
}
