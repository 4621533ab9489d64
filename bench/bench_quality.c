/*
 * nhbench quality: how robust each hash is. For every photo in a folder, transformed copies
 * are made with libvips (recompression, resizing, crops, borders, rotations, flips,
 * brightness and contrast, gray, blur, noise, a text overlay, aspect squash, re-encoding);
 * originals and copies are hashed with PDQ and each neural model through the same pipeline
 * `nhash hash` uses; then per transform:
 *   - the distribution of Hamming distances between original and copy;
 *   - the recall at the thresholds whose false-positive rate over all unrelated pairs
 *     (image i against every original and copy of image j != i) is <= 1e-4 and <= 1e-6;
 *   - a ROC curve (recall against false-positive rate for every threshold).
 * Results go to OUT/quality.json and OUT/roc_<algo>.svg, a summary to stdout.
 * --mirror also reports each model with mirror queries ("M+mirror"): every query image is
 * hashed as it is and mirrored left-right, and the smaller distance counts, for the copies
 * and the unrelated pairs alike, so the threshold pays for the second query.
 *
 * usage: nhbench-quality [--model M.nhm]... [--mirror] [--no-pdq] [--max N] [--out DIR] PHOTO_DIR
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

#include "bench_files.h"
#include "nhash/pipeline.h"

typedef struct transform {
    const char *name;
    const char *family;
} transform;

static const transform T[] = {
    {"jpeg90", "jpeg"},        {"jpeg70", "jpeg"},          {"jpeg50", "jpeg"},
    {"jpeg30", "jpeg"},        {"resize0.5", "resize"},     {"resize0.25", "resize"},
    {"resize2", "resize"},     {"crop5", "crop"},           {"crop10", "crop"},
    {"crop20", "crop"},        {"border10", "border"},      {"rot2", "rotate-small"},
    {"rot5", "rotate-small"},  {"rot10", "rotate-small"},   {"rot90", "rotate90"},
    {"hflip", "flip"},         {"vflip", "flip"},           {"bright+20", "brightness"},
    {"bright-20", "brightness"}, {"bright+40", "brightness"}, {"bright-40", "brightness"},
    {"contrast+20", "contrast"}, {"contrast-20", "contrast"}, {"contrast+40", "contrast"},
    {"contrast-40", "contrast"}, {"gray", "gray"},          {"blur", "blur"},
    {"noise", "noise"},        {"overlay", "overlay"},      {"squash", "aspect"},
    {"webp", "reencode"},      {"png", "reencode"},
};
#define NT (sizeof T / sizeof *T)

static int make_copy(VipsImage *in, size_t t, const char *dir, size_t img, char *out,
                     size_t outlen)
{
    VipsImage *a = NULL, *b = NULL;
    const char *name = T[t].name;
    int w = in->Xsize, h = in->Ysize, rc = 0;
    const char *ext = "png[compression=1]";
    if (!strncmp(name, "jpeg", 4)) {
        static char buf[32];
        snprintf(buf, sizeof buf, "jpg[Q=%d]", atoi(name + 4));
        ext = buf;
        a = in;
        g_object_ref(a);
    } else if (!strncmp(name, "resize", 6)) {
        rc = vips_resize(in, &a, atof(name + 6), NULL);
    } else if (!strncmp(name, "crop", 4)) {
        double f = atof(name + 4) / 100.0;
        int cw = (int)(w * (1 - f)), ch = (int)(h * (1 - f));
        rc = vips_extract_area(in, &a, (w - cw) / 2, (h - ch) / 2, cw, ch, NULL);
    } else if (!strcmp(name, "border10")) {
        int bw = w / 10, bh = h / 10;
        rc = vips_embed(in, &a, bw, bh, w + 2 * bw, h + 2 * bh, "extend", VIPS_EXTEND_BLACK, NULL);
    } else if (!strcmp(name, "rot90")) {
        rc = vips_rot(in, &a, VIPS_ANGLE_D90, NULL);
    } else if (!strncmp(name, "rot", 3)) {
        rc = vips_rotate(in, &b, atof(name + 3), NULL);
        if (!rc)
            rc = vips_extract_area(b, &a, (b->Xsize - w) / 2, (b->Ysize - h) / 2, w, h, NULL);
    } else if (!strcmp(name, "hflip")) {
        rc = vips_flip(in, &a, VIPS_DIRECTION_HORIZONTAL, NULL);
    } else if (!strcmp(name, "vflip")) {
        rc = vips_flip(in, &a, VIPS_DIRECTION_VERTICAL, NULL);
    } else if (!strncmp(name, "bright", 6)) {
        double k = 1 + atof(name + 6) / 100.0;
        rc = vips_linear1(in, &b, k, 0, NULL) || vips_cast_uchar(b, &a, NULL);
    } else if (!strncmp(name, "contrast", 8)) {
        double k = 1 + atof(name + 8) / 100.0;
        rc = vips_linear1(in, &b, k, 128 * (1 - k), NULL) || vips_cast_uchar(b, &a, NULL);
    } else if (!strcmp(name, "gray")) {
        rc = vips_colourspace(in, &a, VIPS_INTERPRETATION_B_W, NULL);
    } else if (!strcmp(name, "blur")) {
        rc = vips_gaussblur(in, &a, 2.0, NULL);
    } else if (!strcmp(name, "noise")) {
        VipsImage *n = NULL, *s = NULL;
        rc = vips_gaussnoise(&n, w, h, "sigma", 12.0, "mean", 0.0, NULL) ||
             vips_add(in, n, &s, NULL) || vips_cast_uchar(s, &a, NULL);
        if (n)
            g_object_unref(n);
        if (s)
            g_object_unref(s);
    } else if (!strcmp(name, "overlay")) {
        VipsImage *txt = NULL, *mask = NULL, *white = NULL;
        int fs = h / 8 > 8 ? h / 8 : 8;
        char font[64];
        snprintf(font, sizeof font, "sans bold %d", fs);
        rc = vips_text(&txt, "nhash (c) 2026", "font", font, "width", w * 9 / 10, NULL);
        if (!rc)
            rc = vips_embed(txt, &mask, w / 20, h - txt->Ysize - h / 20, w, h, NULL);
        if (!rc) {
            /* white text: in + mask * (255 - in) / 255 */
            VipsImage *inv = NULL, *prod = NULL, *sum = NULL, *scaled = NULL;
            rc = vips_linear1(in, &inv, -1, 255, NULL) ||
                 vips_multiply(inv, mask, &prod, NULL) ||
                 vips_linear1(prod, &scaled, 1.0 / 255, 0, NULL) ||
                 vips_add(in, scaled, &sum, NULL) || vips_cast_uchar(sum, &a, NULL);
            if (inv) g_object_unref(inv);
            if (prod) g_object_unref(prod);
            if (sum) g_object_unref(sum);
            if (scaled) g_object_unref(scaled);
        }
        if (txt) g_object_unref(txt);
        if (mask) g_object_unref(mask);
        if (white) g_object_unref(white);
    } else if (!strcmp(name, "squash")) {
        rc = vips_resize(in, &a, 0.75, "vscale", 1.0, NULL);
    } else if (!strcmp(name, "webp")) {
        ext = "webp[Q=80]";
        a = in;
        g_object_ref(a);
    } else if (!strcmp(name, "png")) {
        a = in;
        g_object_ref(a);
    }
    if (b)
        g_object_unref(b);
    if (rc || !a) {
        if (a)
            g_object_unref(a);
        return -1;
    }
    snprintf(out, outlen, "%s/%zu_%zu.%s", dir, img, t, ext);
    rc = vips_image_write_to_file(a, out, NULL);
    g_object_unref(a);
    char *br = strchr(out, '[');
    if (br)
        *br = '\0';
    return rc;
}

struct algo {
    char name[128];
    unsigned kinds;
    const char *model;
    size_t bytes;
    unsigned bits;
    /* hashes[img][t + 1], t = -1 the original; ok flags alongside */
    uint8_t *hashes;
    uint8_t *ok;
    int *quality;
    /* --mirror: each copy is also queried by its left-right mirror image's hash (as
     * `nhash audit --neural-mirror` does); a pair's distance is the smaller of the two */
    int mirror;
    uint8_t *mhashes;
};

/* Distance between a stored hash (slot db, an original) and a query (slot q). */
static unsigned dist(const struct algo *a, size_t db, size_t q)
{
    const uint8_t *h = a->hashes + db * a->bytes;
    unsigned d = nh_hamming(h, a->hashes + q * a->bytes, a->bytes);
    if (a->mirror) {
        unsigned dm = nh_hamming(h, a->mhashes + q * a->bytes, a->bytes);
        if (dm < d)
            d = dm;
    }
    return d;
}

struct collect {
    struct algo *a;
    size_t base, nimg; /* images in this chunk */
    size_t *slot_of;   /* path index -> (img * (NT + 1) + t + 1) */
};

static int on_record(const nh_record *r, void *user)
{
    struct collect *c = user;
    size_t slot = c->slot_of[r->index];
    struct algo *a = c->a;
    if (r->status != NH_OK)
        return 0;
    if (a->kinds & NH_KIND_BIT(NH_KIND_PDQ)) {
        const nh_hash *h = nh_record_hash(r, NH_KIND_PDQ, NH_VARIANT_ORIGINAL);
        memcpy(a->hashes + slot * a->bytes, h->bytes, 32);
        a->quality[slot] = h->quality;
    } else {
        memcpy(a->hashes + slot * a->bytes,
               nh_record_hash(r, NH_KIND_NEURAL, NH_VARIANT_ORIGINAL)->bytes, a->bytes);
        if (a->mirror) {
            const nh_hash *m = nh_record_hash(r, NH_KIND_NEURAL, NH_VARIANT_FLIPX);
            if (!m)
                return 0;
            memcpy(a->mhashes + slot * a->bytes, m->bytes, a->bytes);
        }
    }
    a->ok[slot] = 1;
    return 0;
}

static void svg_roc(const char *path, const struct algo *a, double (*roc)[NT][1025][2],
                    const char **fams, size_t nf, const int *fam_of)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    const int W = 720, H = 480, L = 60, B = 50, R = 180, TOP = 30;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='11'>\n", W, H);
    fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
    fprintf(f, "<text x='%d' y='18' font-size='14'>ROC per transform family: %s (x: false-positive rate, log; y: recall)</text>\n", L, a->name);
    int pw = W - L - R, ph = H - TOP - B;
    for (int e = -8; e <= 0; e++) {
        double x = L + (double)(e + 8) / 8 * pw;
        fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/><text x='%.1f' y='%d' text-anchor='middle'>1e%d</text>\n",
                x, TOP, x, TOP + ph, x, TOP + ph + 15, e);
    }
    for (int k = 0; k <= 10; k += 2) {
        double y = TOP + ph - (double)k / 10 * ph;
        fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/><text x='%d' y='%.1f' text-anchor='end'>%.1f</text>\n",
                L, y, L + pw, y, L - 5, y + 4, k / 10.0);
    }
    static const char *colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                   "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                   "#000000", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896"};
    for (size_t fi = 0; fi < nf; fi++) {
        /* average the family's transforms' recall at each threshold */
        fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", colors[fi % 15]);
        for (unsigned t = 0; t <= a->bits; t++) {
            double fpr = 0, tpr = 0;
            int cnt = 0;
            for (size_t k = 0; k < NT; k++)
                if (fam_of[k] == (int)fi) {
                    fpr = (*roc)[k][t][0];
                    tpr += (*roc)[k][t][1];
                    cnt++;
                }
            tpr /= cnt ? cnt : 1;
            double lx = fpr > 0 ? log10(fpr) : -8;
            if (lx < -8)
                lx = -8;
            fprintf(f, "%.1f,%.1f ", L + (lx + 8) / 8 * pw, TOP + ph - tpr * ph);
        }
        fprintf(f, "'/>\n<text x='%d' y='%zu' fill='%s'>%s</text>\n", L + pw + 10,
                TOP + 12 + fi * 16, colors[fi % 15], fams[fi]);
    }
    fprintf(f, "</svg>\n");
    fclose(f);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nhbench-quality [--model M.nhm]... [--mirror] [--no-pdq] [--max N] "
               "[--out DIR] PHOTO_DIR\n\n"
               "Robustness of each hash per transform of the photos in PHOTO_DIR: distances,\n"
               "recall at FPR 1e-4 and 1e-6, ROC curves (OUT/quality.json, OUT/roc_*.svg).\n\n"
               "  --model M.nhm   a neural model to compare (repeat for up to 8)\n"
               "  --mirror        also report each model with mirror queries\n"
               "  --no-pdq        leave PDQ out\n"
               "  --max N         at most N photos (default 200)\n"
               "  --out DIR       results folder (default bench-quality)\n"
               "  -h, --help      this help\n");
}

int main(int argc, char **argv)
{
    const char *models[8];
    size_t nmodels = 0, max = 200;
    int pdq = 1, mirror = 0;
    const char *outdir = "bench-quality";
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--model") && i + 1 < argc && nmodels < 8)
            models[nmodels++] = argv[++i];
        else if (!strcmp(argv[i], "--no-pdq"))
            pdq = 0;
        else if (!strcmp(argv[i], "--mirror"))
            mirror = 1;
        else if (!strcmp(argv[i], "--max") && i + 1 < argc)
            max = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--out") && i + 1 < argc)
            outdir = argv[++i];
        else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (i != argc - 1) {
        usage(stderr);
        return 2;
    }
    if (VIPS_INIT(argv[0]))
        return 1;
    size_t nimg = 0;
    char **photos = nh_bench_files(argv + i, 1, 1, max, &nimg);
    if (nimg < 2) {
        fprintf(stderr, "nhbench-quality: need at least 2 photos in %s\n", argv[i]);
        return 2;
    }
    if (mkdir(outdir, 0755) && errno != EEXIST) {
        fprintf(stderr, "nhbench-quality: %s: cannot create: %s\n", outdir, strerror(errno));
        return 2;
    }
    if (access(outdir, W_OK)) {
        fprintf(stderr, "nhbench-quality: %s: not writable: %s\n", outdir, strerror(errno));
        return 2;
    }
    /* With --mirror every model is reported twice: plain, then with mirror queries. */
    size_t nneural = nmodels * (mirror ? 2 : 1), nalg = nneural + (size_t)pdq;
    struct algo *algs = calloc(nalg, sizeof *algs);
    for (size_t k = 0; k < nalg; k++) {
        struct algo *a = &algs[k];
        if (k < nneural) {
            size_t mi = mirror ? k / 2 : k;
            a->kinds = NH_KIND_BIT(NH_KIND_NEURAL);
            a->model = models[mi];
            a->mirror = mirror && k % 2;
            const char *b = strrchr(models[mi], '/');
            snprintf(a->name, sizeof a->name, "neural:%s%s", b ? b + 1 : models[mi], a->mirror ? "+mirror" : "");
        } else {
            a->kinds = NH_KIND_BIT(NH_KIND_PDQ);
            snprintf(a->name, sizeof a->name, "pdq");
        }
    }
    /* Transformed copies live in a temp folder, one chunk of originals at a time. */
    char tmp[] = "/tmp/nhbench_quality_XXXXXX";
    if (!mkdtemp(tmp))
        return 1;
    size_t slots = nimg * (NT + 1);
    const size_t chunk = 16;
    double t0 = nh_time_now();
    for (size_t k = 0; k < nalg; k++) {
        nh_pipeline_opts o;
        nh_pipeline_opts_default(&o);
        o.kinds = algs[k].kinds;
        o.model_path = algs[k].model;
        o.neural_mirror = algs[k].mirror;
        o.batch = 16;
        nh_pipeline *p = NULL;
        nh_error err;
        nh_error_clear(&err);
        char eb[2048];
        if (nh_pipeline_create(&o, &p, &err) != NH_OK) {
            fprintf(stderr, "nhbench-quality: %s: %s\n", algs[k].name, nh_error_format(&err, eb, sizeof eb));
            return 1;
        }
        algs[k].bytes = algs[k].kinds & NH_KIND_BIT(NH_KIND_PDQ) ? 32 : nh_pipeline_hash_bytes(p);
        algs[k].bits = (unsigned)algs[k].bytes * 8;
        algs[k].hashes = calloc(slots, algs[k].bytes);
        algs[k].mhashes = algs[k].mirror ? calloc(slots, algs[k].bytes) : NULL;
        algs[k].ok = calloc(slots, 1);
        algs[k].quality = calloc(slots, sizeof(int));
        nh_pipeline_destroy(p);
    }
    size_t made = 0, failed_copies = 0;
    for (size_t c0 = 0; c0 < nimg; c0 += chunk) {
        size_t cn = nimg - c0 < chunk ? nimg - c0 : chunk;
        char **paths = calloc(cn * (NT + 1), sizeof *paths);
        size_t *slot_of = calloc(cn * (NT + 1), sizeof *slot_of);
        size_t np = 0;
        for (size_t m = 0; m < cn; m++) {
            size_t img = c0 + m;
            paths[np] = strdup(photos[img]);
            slot_of[np++] = img * (NT + 1);
            VipsImage *in = vips_image_new_from_file(photos[img], "access", VIPS_ACCESS_RANDOM, NULL);
            VipsImage *rgb = NULL;
            if (in && !vips_colourspace(in, &rgb, VIPS_INTERPRETATION_sRGB, NULL)) {
                VipsImage *x = rgb;
                if (rgb->Bands > 3 && !vips_extract_band(rgb, &x, 0, "n", 3, NULL))
                    g_object_unref(rgb);
                rgb = x;
                VipsImage *mem = vips_image_copy_memory(rgb);
                for (size_t t = 0; mem && t < NT; t++) {
                    char out[4096];
                    if (make_copy(mem, t, tmp, img, out, sizeof out) == 0) {
                        paths[np] = strdup(out);
                        slot_of[np++] = img * (NT + 1) + t + 1;
                        made++;
                    } else {
                        failed_copies++;
                        vips_error_clear();
                    }
                }
                if (mem)
                    g_object_unref(mem);
                g_object_unref(rgb);
            }
            if (in)
                g_object_unref(in);
        }
        for (size_t k = 0; k < nalg; k++) {
            nh_pipeline_opts o;
            nh_pipeline_opts_default(&o);
            o.kinds = algs[k].kinds;
            o.model_path = algs[k].model;
            o.neural_mirror = algs[k].mirror;
            nh_pipeline *p = NULL;
            nh_error err;
            if (nh_pipeline_create(&o, &p, &err) != NH_OK)
                return 1;
            nh_input *in = NULL;
            nh_input_create(paths, np, 0, &in, &err);
            struct collect col = {&algs[k], c0, cn, slot_of};
            nh_pipeline_run(p, in, on_record, &col, NULL, &err);
            nh_input_destroy(in);
            nh_pipeline_destroy(p);
        }
        for (size_t q = 0; q < np; q++) {
            /* Only the copies are ours: an original (slot % (NT + 1) == 0) is the user's file. */
            if (slot_of[q] % (NT + 1) != 0)
                unlink(paths[q]);
            free(paths[q]);
        }
        free(paths);
        free(slot_of);
        /* A live counter on a terminal, one line per chunk in a log. */
        fprintf(stderr, isatty(2) ? "\rnhbench-quality: %zu/%zu photos" : "nhbench-quality: %zu/%zu photos\n",
                c0 + cn, nimg);
    }
    if (isatty(2))
        fprintf(stderr, "\n");
    double secs = nh_time_now() - t0;

    /* Distances. */
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/quality.json", outdir);
    FILE *js = fopen(jpath, "w");
    if (!js) {
        fprintf(stderr, "nhbench-quality: %s: %s\n", jpath, strerror(errno));
        return 1;
    }
    fprintf(js, "{\"photos\":%zu,\"copies\":%zu,\"failed_copies\":%zu,\"seconds\":%.1f,\"algorithms\":[",
            nimg, made, failed_copies, secs);
    const char *fams[NT];
    int fam_of[NT];
    size_t nf = 0;
    for (size_t t = 0; t < NT; t++) {
        size_t f = 0;
        while (f < nf && strcmp(fams[f], T[t].family))
            f++;
        if (f == nf)
            fams[nf++] = T[t].family;
        fam_of[t] = (int)f;
    }
    printf("nhbench-quality: %zu photos from %s, %zu transformed copies, %.0fs\n", nimg, argv[i],
           made, secs);
    for (size_t k = 0; k < nalg; k++) {
        struct algo *a = &algs[k];
        unsigned bits = a->bits;
        double *unrel = calloc(bits + 1, sizeof *unrel);
        double npairs = 0;
        for (size_t x = 0; x < nimg; x++) {
            if (!a->ok[x * (NT + 1)])
                continue;
            for (size_t y = 0; y < nimg; y++) {
                if (y == x)
                    continue;
                for (size_t t = 0; t <= NT; t++) {
                    size_t s = y * (NT + 1) + t;
                    if (!a->ok[s])
                        continue;
                    unrel[dist(a, x * (NT + 1), s)]++;
                    npairs++;
                }
            }
        }
        double cum = 0, mean_unrel = 0;
        int thr4 = -1, thr6 = -1;
        double (*roc)[NT][1025][2] = calloc(1, sizeof *roc);
        double *fpr_at = calloc(bits + 1, sizeof *fpr_at);
        for (unsigned d = 0; d <= bits; d++) {
            cum += unrel[d];
            mean_unrel += d * unrel[d];
            fpr_at[d] = cum / npairs;
            if (fpr_at[d] <= 1e-4)
                thr4 = (int)d;
            if (fpr_at[d] <= 1e-6)
                thr6 = (int)d;
        }
        mean_unrel /= npairs;
        fprintf(js, "%s{\"name\":\"%s\",\"bits\":%u,\"unrelated_pairs\":%.0f,\"unrelated_mean\":%.3f,"
                    "\"threshold_fpr_1e-4\":%d,\"threshold_fpr_1e-6\":%d,\"unrelated_histogram\":[",
                k ? "," : "", a->name, bits, npairs, mean_unrel, thr4, thr6);
        for (unsigned d = 0; d <= bits; d++)
            fprintf(js, "%s%.0f", d ? "," : "", unrel[d]);
        fprintf(js, "],\"transforms\":[");
        printf("\n%s: unrelated pairs %.0f, mean distance %.2f of %u bits; threshold at FPR<=1e-4: %d, "
               "at FPR<=1e-6: %d%s\n",
               a->name, npairs, mean_unrel, bits, thr4, thr6,
               npairs < 1e6 ? " (1e-6 is below this sample's resolution: threshold is conservative)" : "");
        printf("  %-12s %-13s %6s %6s %6s %9s %9s\n", "transform", "family", "mean", "median", "p90",
               "rec@1e-4", "rec@1e-6");
        for (size_t t = 0; t < NT; t++) {
            unsigned *hist = calloc(bits + 1, sizeof *hist);
            size_t n = 0;
            double mean = 0;
            for (size_t x = 0; x < nimg; x++) {
                size_t so = x * (NT + 1), st = so + t + 1;
                if (!a->ok[so] || !a->ok[st])
                    continue;
                unsigned d = dist(a, so, st);
                hist[d]++;
                n++;
                mean += d;
            }
            mean /= n ? (double)n : 1;
            size_t c = 0;
            int med = -1, p90 = -1;
            double rec4 = 0, rec6 = 0;
            for (unsigned d = 0; d <= bits; d++) {
                c += hist[d];
                if (med < 0 && c * 2 >= n)
                    med = (int)d;
                if (p90 < 0 && c * 10 >= n * 9)
                    p90 = (int)d;
                if ((int)d <= thr4)
                    rec4 = (double)c / (n ? (double)n : 1);
                if ((int)d <= thr6)
                    rec6 = (double)c / (n ? (double)n : 1);
                (*roc)[t][d][0] = fpr_at[d];
                (*roc)[t][d][1] = (double)c / (n ? (double)n : 1);
            }
            printf("  %-12s %-13s %6.2f %6d %6d %9.3f %9.3f\n", T[t].name, T[t].family, mean, med, p90,
                   rec4, rec6);
            fprintf(js, "%s{\"name\":\"%s\",\"family\":\"%s\",\"pairs\":%zu,\"mean\":%.3f,\"median\":%d,"
                        "\"p90\":%d,\"recall_fpr_1e-4\":%.4f,\"recall_fpr_1e-6\":%.4f,\"histogram\":[",
                    t ? "," : "", T[t].name, T[t].family, n, mean, med, p90, rec4, rec6);
            for (unsigned d = 0; d <= bits; d++)
                fprintf(js, "%s%u", d ? "," : "", hist[d]);
            fprintf(js, "]}");
            free(hist);
        }
        fprintf(js, "]}");
        char svg[4096];
        char safe[128];
        snprintf(safe, sizeof safe, "%s", a->name);
        for (char *s = safe; *s; s++)
            if (*s == ':' || *s == '/' || *s == '.')
                *s = '_';
        snprintf(svg, sizeof svg, "%s/roc_%s.svg", outdir, safe);
        svg_roc(svg, a, roc, fams, nf, fam_of);
        free(unrel);
        free(roc);
        free(fpr_at);
    }
    fprintf(js, "]}\n");
    fclose(js);
    printf("\nresults: %s and %s/roc_*.svg\n", jpath, outdir);
    rmdir(tmp);
    return 0;
}
