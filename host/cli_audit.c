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

/* The radii come from nhbench quality's decision table on the model card's held-out photos
 * (74 photos, 178,266 unrelated pairs hashed by both): each hash's own threshold at a
 * false-positive rate <= 1e-6 (no unrelated pair within 14 neural bits or 75 PDQ bits). What
 * counts is a confirmed match, both hashes within these radii of one known image: its rate is
 * at most either hash's, whatever their correlation. README "Confirmed matches",
 * docs/model-card.md "Decision rules". */
#define DEFAULT_RADIUS_NEURAL 14
#define DEFAULT_RADIUS_PDQ 75
#define DEFAULT_THRESHOLD 30

static void usage(FILE *f)
{
    fprintf(f,
            "usage: nhash audit --db SET [options] ARCHIVE...\n\n"
            "Hash every file of each ARCHIVE (a folder, a file, or '-' for a path list on stdin)\n"
            "and match it against the hash set SET (built with `nhash hash --db` or nhdb).\n"
            "A file's matches are joined by known image (entries with the same file digest, or\n"
            "else the same source) and reported once per known image with the evidence of each\n"
            "kind (distance, radius, variant, PDQ qualities, the entry's metadata). A match is\n"
            "confirmed when the file's digest equals the known image's, or when the neural hash\n"
            "and PDQ both match it within their radii; one perceptual hash alone is unconfirmed\n"
            "(listed for review: the open model's neural hash can be forged in seconds). Then one\n"
            "summary per archive: files, failures, matched, confirmed and counted files, and\n"
            "whether the counted files reached the threshold.\n\n"
            "  --db DIR            the hash set (required)\n"
            "  --algo LIST         neural, pdq, digest (default: every kind the set holds that\n"
            "                      this run can compute)\n"
            "  --model FILE        neural model (default as in `nhash hash`); only hashes made\n"
            "                      by the same model (fingerprint) are compared\n"
            "  --radius-neural N   default %d of 96 bits (set for the default model, nhash-open\n"
            "                      v2; for other models see their benchmark: nhbench quality)\n"
            "  --radius-pdq N      default %d of 256 bits (both defaults: each hash's threshold\n"
            "                      at a false-positive rate of 1e-6 per pair on the model card's\n"
            "                      held-out photos; Meta's recommendation, 31, is stricter: use\n"
            "                      it against very large sets or to match other tools); PDQ\n"
            "                      hashes of quality under 50 are reported as unreliable\n"
            "  --pdq-dihedral      also match PDQ's 8 rotations and flips of each file (the\n"
            "                      match record names the variant)\n"
            "  --neural-mirror     also match each file's left-right mirror image with the neural\n"
            "                      hash (a second network pass; the match record's variant is\n"
            "                      \"flipx\" when the mirror image matched better)\n"
            "  --threshold N       counted files per archive that raise the flag (default %d,\n"
            "                      as in Apple's design)\n"
            "  --count RULE        what counts toward the threshold: confirmed (default: files\n"
            "                      with a confirmed match) or any (files with any reliable match,\n"
            "                      one forgeable hash suffices; the summary warns)\n"
            "  --format jsonl|csv  default jsonl (records of type match, error, summary); csv\n"
            "                      prints one row per piece of evidence on stdout (column match\n"
            "                      numbers the file's known images) and summaries on stderr\n"
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
    size_t nknown;           /* known images reported for the current file */
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

static void json_entry(const nh_match *m)
{
    printf("\"entry\":{\"id\":%llu,\"source\":", (unsigned long long)m->id);
    nh_json_string(stdout, m->source);
    fputs(",\"label\":", stdout);
    nh_json_string(stdout, m->label);
    fputs(",\"note\":", stdout);
    nh_json_string(stdout, m->note);
    printf(",\"added\":%lld}", (long long)m->added);
}

static void hex16(char *out, const uint8_t *b)
{
    for (int i = 0; i < NH_MATCH_DIGEST_BYTES; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

static const char *confirmed_by_name(unsigned by)
{
    switch (by) {
    case NH_CONFIRM_DIGEST: return "digest";
    case NH_CONFIRM_PERCEPTUAL: return "neural+pdq";
    case NH_CONFIRM_DIGEST | NH_CONFIRM_PERCEPTUAL: return "digest,neural+pdq";
    default: return NULL;
    }
}

/* One known image matched by the current file: one JSONL record with the evidence of each
 * kind, or one CSV row per piece of evidence. */
static int on_known(const nh_match_known *k, void *user)
{
    struct audit_ctx *c = user;
    const char *status = nh_match_status_name(k->status);
    const char *by = confirmed_by_name(k->confirmed_by);
    int counted = k->status == NH_MATCH_CONFIRMED ||
                  (c->tally.rule == NH_COUNT_ANY && k->status == NH_MATCH_UNCONFIRMED);
    c->nknown++;
    if (c->csv) {
        for (size_t i = 0; i < k->n; i++) {
            const nh_match *m = &k->ev[i];
            const char *variant = m->has_variant ? nh_variant_name(m->variant) : NULL;
            char t[32];
            nh_csv_field(stdout, c->archive);
            fputc(',', stdout);
            nh_csv_field(stdout, c->cur->path);
            printf(",%zu,%s,%s,%d,%s,%u,%u,%s,", c->nknown, status, by ? by : "", counted,
                   nh_kind_name(m->kind), m->distance, m->radius, variant ? variant : "");
            if (m->quality >= 0)
                printf("%d", m->quality);
            fputc(',', stdout);
            if (m->query_quality >= 0)
                printf("%d", m->query_quality);
            printf(",%d,%llu,", m->unreliable, (unsigned long long)m->id);
            nh_csv_field(stdout, m->source);
            fputc(',', stdout);
            nh_csv_field(stdout, m->label);
            fputc(',', stdout);
            nh_csv_field(stdout, m->note);
            snprintf(t, sizeof t, "%lld", (long long)m->added);
            printf(",%s\n", t);
        }
        return 0;
    }
    fputs("{\"type\":\"match\",", stdout);
    json_archive_path(c, c->cur->path);
    printf(",\"status\":\"%s\"", status);
    if (by)
        printf(",\"confirmed_by\":\"%s\"", by);
    printf(",\"counted\":%s,\"known\":{", counted ? "true" : "false");
    if (k->digest) {
        char hx[2 * NH_MATCH_DIGEST_BYTES + 1];
        hex16(hx, k->digest);
        printf("\"digest\":\"%s\",", hx);
    }
    fputs("\"source\":", stdout);
    nh_json_string(stdout, k->source);
    fputs("},\"evidence\":[", stdout);
    for (size_t i = 0; i < k->n; i++) {
        const nh_match *m = &k->ev[i];
        printf("%s{\"kind\":\"%s\",\"distance\":%u,\"radius\":%u", i ? "," : "",
               nh_kind_name(m->kind), m->distance, m->radius);
        if (m->has_variant)
            printf(",\"variant\":\"%s\"", nh_variant_name(m->variant));
        if (m->quality >= 0)
            printf(",\"quality\":%d", m->quality);
        if (m->query_quality >= 0)
            printf(",\"file_quality\":%d", m->query_quality);
        if (m->unreliable)
            fputs(",\"unreliable\":true", stdout);
        fputc(',', stdout);
        json_entry(m);
        fputc('}', stdout);
    }
    fputs("]}\n", stdout);
    return 0;
}

static int on_record(const nh_record *r, void *user)
{
    struct audit_ctx *c = user;
    char eb[2048];
    if (r->status != NH_OK) {
        nh_match_tally_add(&c->tally, r, NULL);
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
    c->nknown = 0;
    nh_match_result res;
    nh_cli_db_guard_enter(); /* a damaged set faults inside LMDB's reads: reported, exit 2 */
    nh_status mst = nh_match_file(c->rd, c->neural, &c->radii, r, on_known, c, &res, &c->err);
    nh_cli_db_guard_leave();
    if (mst != NH_OK) {
        c->fatal = 1;
        return 1;
    }
    nh_match_tally_add(&c->tally, r, &res);
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
    nh_count_rule rule = NH_COUNT_CONFIRMED;
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
        {"count", required_argument, 0, 'C'},       {0, 0, 0, 0}};
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
        case 'C': {
            int v = nh_count_rule_parse(optarg);
            if (v < 0) {
                fprintf(stderr, "nhash audit: unknown --count '%s' (confirmed or any)\n", optarg);
                return 2;
            }
            rule = (nh_count_rule)v;
            break;
        }
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
    /* Confirmation needs two independent perceptual hashes (or the digest). */
    unsigned perceptual = o.kinds & have & (NEURAL | PDQ);
    char warning[512] = "";
    if (perceptual != (NEURAL | PDQ)) {
        const char *which = perceptual == NEURAL ? "neural" : perceptual == PDQ ? "pdq" : NULL;
        char what[96];
        snprintf(what, sizeof what, which ? "only one perceptual hash is compared (%s)"
                                          : "no perceptual hash is compared%s",
                 which ? which : "");
        if (rule == NH_COUNT_CONFIRMED)
            snprintf(warning, sizeof warning,
                     "%s: a perceptual match rests on one hash that can be forged, so none is "
                     "confirmed unless the file is a known file byte for byte (digest); they are "
                     "listed as unconfirmed and do not count (--count any counts them)", what);
        else
            snprintf(warning, sizeof warning,
                     "%s: with --count any a match counts on one hash, which can be forged", what);
    } else if (rule == NH_COUNT_ANY) {
        snprintf(warning, sizeof warning,
                 "--count any: a match counts on one hash (neural or pdq), which can be forged; "
                 "confirmed matches are marked");
    }
    if (*warning)
        fprintf(stderr, "nhash audit: warning: %s\n", warning);
    o.kinds |= DIGEST;
    o.stop = &g_stop;
    nh_status st = nh_pipeline_create(&o, &p, &err);
    if (st != NH_OK) {
        fprintf(stderr, "nhash audit: %s\n", nh_error_format(&err, eb, sizeof eb));
        nh_cli_db_close(db);
        return 2;
    }
    if (csv)
        printf("archive,path,match,status,confirmed_by,counted,kind,distance,radius,variant,"
               "entry_quality,file_quality,unreliable,entry_id,entry_source,entry_label,"
               "entry_note,entry_added\n");
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
        c.tally.rule = rule;
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
            fprintf(stderr, "nhash audit: %s: %zu files, %zu failed, %zu matched files (%zu "
                            "confirmed), %zu counted (--count %s); %zu matches: %zu confirmed, "
                            "%zu unconfirmed, %zu unreliable; threshold %zu %s%s%s\n",
                    c.archive, t->files, t->failed, t->matched_files, t->confirmed_files,
                    t->counted_files, nh_count_rule_name(rule), t->matches, t->confirmed,
                    t->unconfirmed, t->unreliable, threshold, reached ? "REACHED" : "not reached",
                    *warning ? "; warning: " : "", warning);
        } else {
            fputs("{\"type\":\"summary\",\"archive\":", stdout);
            nh_json_string(stdout, c.archive);
            printf(",\"files\":%zu,\"failed\":%zu,\"matched_files\":%zu,\"confirmed_files\":%zu,"
                   "\"counted_files\":%zu,\"count\":\"%s\",\"matches\":%zu,"
                   "\"confirmed_matches\":%zu,\"unconfirmed_matches\":%zu,"
                   "\"unreliable_matches\":%zu,\"threshold\":%zu,\"threshold_reached\":%s,"
                   "\"radius_neural\":%u,\"radius_pdq\":%u",
                   t->files, t->failed, t->matched_files, t->confirmed_files, t->counted_files,
                   nh_count_rule_name(rule), t->matches, t->confirmed, t->unconfirmed,
                   t->unreliable, threshold, reached ? "true" : "false", r_neural, r_pdq);
            if (*warning) {
                fputs(",\"warning\":", stdout);
                nh_json_string(stdout, warning);
            }
            printf("%s}\n", st == NH_ERR_INTERRUPTED ? ",\"interrupted\":true" : "");
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
