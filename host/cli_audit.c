/*
 * nhash audit: hash archives and match every file against a hash set. Reports every match
 * (file, matched entry with its metadata, kind, distance) and one summary per archive with
 * the number of matched files against a threshold, as Apple's design counted matches per
 * account before anything was revealed.
 *
 * An archive is one PATH argument (a folder, a file, or '-' for a stdin list).
 */
#include <getopt.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cli_out.h"
#include "nhash/match.h"
#include "nhash/net.h"
#include "nhdb/nhdb.h"
#include "nhash/pipeline.h"
#include "cli_db.h"

int nh_cli_audit(int argc, char **argv);

/* The default model's (nhash-open v2) threshold at a false-positive rate <= 1e-6 on the model
 * card's benchmark is 14 bits (no unrelated pair within 14 of 178,266); 12 keeps two bits below it,
 * as 8 did for v1 (10). docs/model-card.md. */
#define DEFAULT_RADIUS_NEURAL 12
#define DEFAULT_RADIUS_PDQ 31
#define DEFAULT_THRESHOLD 30

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nhash audit --db SET [options] ARCHIVE...\n\n"
            "Hash every file of each ARCHIVE (a folder, a file, or '-' for a path list on stdin)\n"
            "and match it against the hash set SET (built with `nhash hash --db` or nhdb).\n"
            "Every match is reported with its distance and the matched entry's metadata, then\n"
            "one summary per archive: files, failures, matched files and whether the number of\n"
            "matched files reached the threshold.\n\n"
            "  --db DIR            the hash set (required)\n"
            "  --algo LIST         neural, pdq, digest (default: every kind the set holds that\n"
            "                      this run can compute)\n"
            "  --model FILE        neural model (default as in `nhash hash`); only hashes made\n"
            "                      by the same model (fingerprint) are compared\n"
            "  --radius-neural N   default %d of 96 bits (set for the default model, nhash-open\n"
            "                      v2; for other models see their benchmark: nhbench quality)\n"
            "  --radius-pdq N      default %d of 256 bits (Meta's recommendation); PDQ hashes\n"
            "                      of quality under 50 are reported as unreliable and not counted\n"
            "  --pdq-dihedral      also match PDQ's 8 rotations and flips of each file (the\n"
            "                      match record names the variant)\n"
            "  --neural-mirror     also match each file's left-right mirror image with the neural\n"
            "                      hash (a second network pass; the match record's variant is\n"
            "                      \"flipx\" when the mirror image matched better)\n"
            "  --threshold N       matched files per archive that raise the flag (default %d,\n"
            "                      as in Apple's design)\n"
            "  --format jsonl|csv  default jsonl (records of type match, error, summary); csv\n"
            "                      prints matches on stdout and summaries on stderr\n"
            "  -0, --null, --batch, --threads, --backend, --platform, --device, --decode,\n"
            "  --allow-untrusted, --max-pixels, --pdq-backend   as in `nhash hash`\n\n"
            "Exit status: 0 no archive reached the threshold and every file was read, 1 some\n"
            "files failed, 3 an archive reached the threshold (wins over 1), 2 usage or set-up\n"
            "error, 130 interrupted by Ctrl-C, 143 by SIGTERM (either, once or again, finishes\n"
            "the batch in flight and writes out its matches and the archive's summary, marked\n"
            "\"interrupted\").\n",
            DEFAULT_RADIUS_NEURAL, DEFAULT_RADIUS_PDQ, DEFAULT_THRESHOLD);
}

/* The signal that asked to stop (SIGINT, SIGTERM), 0 while none has. */
static volatile sig_atomic_t g_stop;

struct audit_ctx {
    nh_db_reader *rd;
    const nh_kind *neural;   /* the model's kind, NULL when neural hashes are not compared */
    nh_match_opts radii;
    const char *archive;
    int csv;
    nh_match_tally tally;
    const nh_record *cur;
    nh_error err;
    int fatal;
    int out_errno;           /* writing stdout failed with this errno */
};

static void json_archive_path(struct audit_ctx *c, const char *path)
{
    fputs("\"archive\":", stdout);
    nh_json_string(stdout, c->archive);
    fputc(',', stdout);
    nh_json_field(stdout, "path", path);
}

static int on_match(const nh_match *m, void *user)
{
    struct audit_ctx *c = user;
    const char *kind = nh_kind_name(m->kind);
    const char *variant = m->has_variant ? nh_variant_name(m->variant) : NULL;
    if (c->csv) {
        char t[32];
        nh_csv_field(stdout, c->archive);
        fputc(',', stdout);
        nh_csv_field(stdout, c->cur->path);
        printf(",%s,%u,%llu,", kind, m->distance, (unsigned long long)m->id);
        nh_csv_field(stdout, m->source);
        fputc(',', stdout);
        nh_csv_field(stdout, m->label);
        fputc(',', stdout);
        nh_csv_field(stdout, m->note);
        snprintf(t, sizeof t, "%lld", (long long)m->added);
        printf(",%s,%d,%s\n", t, m->unreliable, variant ? variant : "");
        return 0;
    }
    fputs("{\"type\":\"match\",", stdout);
    json_archive_path(c, c->cur->path);
    printf(",\"kind\":\"%s\",\"distance\":%u", kind, m->distance);
    if (variant)
        printf(",\"variant\":\"%s\"", variant);
    if (m->unreliable)
        fputs(",\"unreliable\":true", stdout);
    printf(",\"entry\":{\"id\":%llu,\"source\":", (unsigned long long)m->id);
    nh_json_string(stdout, m->source);
    fputs(",\"label\":", stdout);
    nh_json_string(stdout, m->label);
    fputs(",\"note\":", stdout);
    nh_json_string(stdout, m->note);
    printf(",\"added\":%lld}}\n", (long long)m->added);
    return 0;
}

static int on_record(const nh_record *r, void *user)
{
    struct audit_ctx *c = user;
    char eb[2048];
    if (r->status != NH_OK) {
        nh_match_tally_add(&c->tally, r, 0, 0);
        fprintf(stderr, "nhash: %s\n", nh_error_format(&r->err, eb, sizeof eb));
        if (!c->csv) {
            fputs("{\"type\":\"error\",", stdout);
            json_archive_path(c, r->path);
            printf(",\"error\":\"%s\",\"message\":", nh_status_name(r->status));
            nh_json_string(stdout, r->err.msg);
            fputs("}\n", stdout);
        }
        return 0;
    }
    c->cur = r;
    size_t n = 0, reliable = 0;
    if (nh_match_record(c->rd, c->neural, &c->radii, r, on_match, c, &n, &reliable, &c->err) !=
        NH_OK) {
        c->fatal = 1;
        return 1;
    }
    nh_match_tally_add(&c->tally, r, n, reliable);
    if (ferror(stdout)) {
        c->out_errno = errno ? errno : EIO;
        return 1;
    }
    return 0;
}

int nh_cli_audit(int argc, char **argv)
{
    nh_pipeline_opts o;
    nh_pipeline_opts_default(&o);
    o.kinds = 0;
    const char *db_dir = NULL;
    unsigned r_neural = DEFAULT_RADIUS_NEURAL, r_pdq = DEFAULT_RADIUS_PDQ;
    size_t threshold = DEFAULT_THRESHOLD;
    int csv = 0, nul = 0;
    unsigned long long num = 0;
    static const struct option lo[] = {
        {"db", required_argument, 0, 'S'},          {"algo", required_argument, 0, 'a'},
        {"model", required_argument, 0, 'm'},       {"radius-neural", required_argument, 0, 'n'},
        {"radius-pdq", required_argument, 0, 'p'},  {"threshold", required_argument, 0, 'T'},
        {"format", required_argument, 0, 'f'},      {"null", no_argument, 0, '0'},
        {"batch", required_argument, 0, 'b'},       {"threads", required_argument, 0, 't'},
        {"backend", required_argument, 0, 'B'},     {"platform", required_argument, 0, 'P'},
        {"device", required_argument, 0, 'D'},      {"decode", required_argument, 0, 'd'},
        {"allow-untrusted", no_argument, 0, 'u'},   {"max-pixels", required_argument, 0, 'x'},
        {"pdq-dihedral", no_argument, 0, 'R'},      {"help", no_argument, 0, 'h'},
        {"neural-mirror", no_argument, 0, 'M'},     {"pdq-backend", required_argument, 0, 'Q'},
        {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "0h", lo, NULL)) != -1) {
        switch (ch) {
        case 'S': db_dir = optarg; break;
        case 'a':
            if (nh_kind_parse_list(optarg, &o.kinds) != NH_OK) {
                fprintf(stderr, "nhash audit: unknown --algo '%s'\n", optarg);
                return 2;
            }
            break;
        case 'm': o.model_path = optarg; break;
        case 'n':
            if (nh_cli_parse_uint("nhash audit", "--radius-neural", optarg, 0,
                                  8 * NH_HASH_MAX_BYTES, &num))
                return 2;
            r_neural = (unsigned)num;
            break;
        case 'p':
            if (nh_cli_parse_uint("nhash audit", "--radius-pdq", optarg, 0, 256, &num))
                return 2;
            r_pdq = (unsigned)num;
            break;
        case 'T':
            if (nh_cli_parse_uint("nhash audit", "--threshold", optarg, 1, SIZE_MAX, &num))
                return 2;
            threshold = (size_t)num;
            break;
        case 'f':
            if (!strcmp(optarg, "csv"))
                csv = 1;
            else if (strcmp(optarg, "jsonl")) {
                fprintf(stderr, "nhash audit: unknown --format '%s'\n", optarg);
                return 2;
            }
            break;
        case '0': nul = 1; break;
        case 'R': o.pdq_dihedral = 1; break;
        case 'M': o.neural_mirror = 1; break;
        case 'h': usage(stdout); return 0;
        default:
            /* the options every pipeline command shares */
            switch (nh_cli_pipeline_option("nhash audit", ch, optarg, &o)) {
            case 0: break;
            case 2: return 2;
            default: usage(stderr); return 2;
            }
            break;
        }
    }
    if (!db_dir || optind >= argc) {
        usage(stderr);
        return 2;
    }
    nh_error err;
    nh_error_clear(&err);
    char eb[4096];
    /* Which kinds can be compared: open the set first to see what it holds. */
    nh_cli_db *db = NULL;
    nh_pipeline *p = NULL;
    int rc = 0;
    unsigned want = o.kinds;
    const unsigned NEURAL = NH_KIND_BIT(NH_KIND_NEURAL), PDQ = NH_KIND_BIT(NH_KIND_PDQ),
                   DIGEST = NH_KIND_BIT(NH_KIND_DIGEST);
    if (!want)
        o.kinds = NEURAL | PDQ | DIGEST;
    /* The model's kind (fingerprint and width) tells which of the set's neural hashes compare;
     * reading the model file is enough to know it, so the pipeline is built once, below, for
     * just the kinds the set holds. Without a usable model the audit goes on without it
     * unless neural hashes were asked for. */
    nh_kind neural_kind = nh_kind_of(NH_KIND_NEURAL);
    int have_model = 0;
    if (o.kinds & NEURAL) {
        nh_model *model = NULL;
        const char *mp = o.model_path ? o.model_path : nh_pipeline_default_model();
        nh_status st = nh_model_load(mp, &model, &err);
        if (st == NH_OK && !nh_kind_bits_valid(NH_KIND_NEURAL, model->hash_bits))
            st = nh_error_set(&err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, mp,
                              "model has no usable hash projection (%u bits)", model->hash_bits);
        if (st == NH_OK) {
            neural_kind = nh_kind_neural(model->fingerprint, model->hash_bits);
            have_model = 1;
        } else if (want) {
            fprintf(stderr, "nhash audit: %s\n", nh_error_format(&err, eb, sizeof eb));
            nh_model_destroy(model);
            return 2;
        } else {
            o.kinds &= ~NEURAL;
        }
        nh_model_destroy(model);
    }
    if (nh_cli_db_open(db_dir, 0, have_model ? &neural_kind : NULL, &db, &err) != NH_OK) {
        fprintf(stderr, "nhash audit: %s\n", nh_error_format(&err, eb, sizeof eb));
        return 2;
    }
    size_t others = 0;
    unsigned have = nh_cli_db_kinds(db, &others);
    if (others)
        fprintf(stderr, "nhash audit: the set also holds neural hashes of %zu other model(s); "
                        "they are not compared with this model's hashes\n", others);
    if (!want)
        o.kinds = have & o.kinds;
    else if ((want & ~have) != 0)
        fprintf(stderr, "nhash audit: note: the set holds no hashes of some requested kind(s)\n");
    if (!o.kinds) {
        fprintf(stderr, "nhash audit: the set %s holds nothing this run can compare\n", db_dir);
        nh_cli_db_close(db);
        return 2;
    }
    if (have_model && (o.kinds & NEURAL) && r_neural > nh_kind_bits(&neural_kind)) {
        fprintf(stderr, "nhash audit: --radius-neural %u is over the model's %u bits\n", r_neural,
                nh_kind_bits(&neural_kind));
        nh_cli_db_close(db);
        return 2;
    }
    o.kinds |= DIGEST;
    o.stop = &g_stop;
    nh_status st = nh_pipeline_create(&o, &p, &err);
    if (st != NH_OK) {
        fprintf(stderr, "nhash audit: %s\n", nh_error_format(&err, eb, sizeof eb));
        nh_cli_db_close(db);
        return 2;
    }
    if (csv)
        printf("archive,path,kind,distance,entry_id,entry_source,entry_label,entry_note,"
               "entry_added,unreliable,variant\n");
    nh_cli_signals_install(&g_stop);
    int any_threshold = 0, any_failed = 0;
    for (int a = optind; a < argc && !g_stop; a++) {
        struct audit_ctx c;
        memset(&c, 0, sizeof c);
        c.rd = nh_cli_db_reader(db);
        c.neural = (o.kinds & NEURAL) ? &neural_kind : NULL;
        c.radii.radius_neural = r_neural;
        c.radii.radius_pdq = r_pdq;
        c.tally.threshold = threshold;
        c.archive = argv[a];
        c.csv = csv;
        nh_input *in = NULL;
        if (nh_input_create(argv + a, 1, nul, &in, &err) != NH_OK)
            break;
        nh_pipeline_stats stats;
        st = nh_pipeline_run(p, in, on_record, &c, &stats, &err);
        nh_input_destroy(in);
        const nh_match_tally *t = &c.tally;
        int reached = nh_match_tally_reached(t);
        any_threshold |= reached;
        any_failed |= t->failed > 0;
        if (csv) {
            fprintf(stderr, "nhash audit: %s: %zu files, %zu failed, %zu matched files (%zu matches, "
                            "%zu unreliable), threshold %zu %s\n",
                    c.archive, t->files, t->failed, t->matched_files, t->matches, t->unreliable,
                    threshold, reached ? "REACHED" : "not reached");
        } else {
            fputs("{\"type\":\"summary\",\"archive\":", stdout);
            nh_json_string(stdout, c.archive);
            printf(",\"files\":%zu,\"failed\":%zu,\"matched_files\":%zu,\"matches\":%zu,"
                   "\"unreliable_matches\":%zu,\"threshold\":%zu,\"threshold_reached\":%s,"
                   "\"radius_neural\":%u,\"radius_pdq\":%u%s}\n",
                   t->files, t->failed, t->matched_files, t->matches, t->unreliable, threshold,
                   reached ? "true" : "false", r_neural, r_pdq,
                   st == NH_ERR_INTERRUPTED ? ",\"interrupted\":true" : "");
        }
        if ((fflush(stdout) != 0 || ferror(stdout)) && !c.out_errno)
            c.out_errno = errno ? errno : EIO;
        if (c.out_errno) {
            fprintf(stderr, "nhash audit: cannot write the records: %s\n", strerror(c.out_errno));
            rc = 2;
            break;
        }
        if (c.fatal) {
            fprintf(stderr, "nhash audit: %s\n", nh_error_format(&c.err, eb, sizeof eb));
            rc = 2;
            break;
        }
        if (st != NH_OK && st != NH_ERR_INTERRUPTED) {
            fprintf(stderr, "nhash audit: stopped: %s\n", nh_error_format(&err, eb, sizeof eb));
            rc = 2;
            break;
        }
    }
    if (!rc && g_stop)
        fprintf(stderr, "nhash audit: interrupted by %s: the batch in flight was finished and "
                        "written out\n", g_stop == SIGTERM ? "SIGTERM" : "SIGINT");
    if (!rc)
        rc = g_stop ? 128 + (int)g_stop : any_threshold ? 3 : any_failed ? 1 : 0;
    nh_pipeline_destroy(p);
    nh_cli_db_close(db);
    return rc;
}
