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
 * Each neural model is also paired with PDQ as one decision (AND, OR, a fused score), each
 * calibrated on the joint unrelated pairs (see "decision rules" below and --help).
 * --groups FILE keeps near-duplicates (photos of one group) out of each other's unrelated pairs.
 * --mirror also reports each model with mirror queries ("M+mirror"): every query image is
 * hashed as it is and mirrored left-right, and the smaller distance counts, for the copies
 * and the unrelated pairs alike, so the threshold pays for the second query.
 *
 * usage: nhbench-quality [--model M.nhm]... [--mirror] [--no-pdq] [--groups FILE] [--and TN,TP]
 *                        [--max N] [--out DIR] PHOTO_DIR
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

/* Families of transforms, in order of first appearance in T. */
struct families {
    const char *name[NT];
    int of[NT]; /* transform -> family */
    size_t n;
};

/* ROC plots: x the false-positive rate on a log scale from 1e-8 to 1 (0 is drawn at 1e-8), y the
 * recall, one polyline per transform family. */
enum { SVG_W = 720, SVG_H = 480, SVG_L = 60, SVG_B = 50, SVG_R = 180, SVG_TOP = 30 };
static const char *const svg_colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                         "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
                                         "#000000", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896"};

/* Returned-owned: close with svg_end. NULL when the file cannot be made. */
static FILE *svg_begin(const char *path, const char *what)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return NULL;
    const int pw = SVG_W - SVG_L - SVG_R, ph = SVG_H - SVG_TOP - SVG_B;
    fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' font-family='sans-serif' font-size='11'>\n", SVG_W, SVG_H);
    fprintf(f, "<rect width='100%%' height='100%%' fill='white'/>\n");
    fprintf(f, "<text x='%d' y='18' font-size='14'>ROC per transform family: %s (x: false-positive rate, log; y: recall)</text>\n", SVG_L, what);
    for (int e = -8; e <= 0; e++) {
        double x = SVG_L + (double)(e + 8) / 8 * pw;
        fprintf(f, "<line x1='%.1f' y1='%d' x2='%.1f' y2='%d' stroke='#ddd'/><text x='%.1f' y='%d' text-anchor='middle'>1e%d</text>\n",
                x, SVG_TOP, x, SVG_TOP + ph, x, SVG_TOP + ph + 15, e);
    }
    for (int k = 0; k <= 10; k += 2) {
        double y = SVG_TOP + ph - (double)k / 10 * ph;
        fprintf(f, "<line x1='%d' y1='%.1f' x2='%d' y2='%.1f' stroke='#ddd'/><text x='%d' y='%.1f' text-anchor='end'>%.1f</text>\n",
                SVG_L, y, SVG_L + pw, y, SVG_L - 5, y + 4, k / 10.0);
    }
    return f;
}

/* Family fi's curve through n points (fpr[k], rec[k]), in order; a point that lands on the
 * previous one's pixel is left out. */
static void svg_curve(FILE *f, size_t fi, const char *label, const double *fpr, const double *rec,
                      size_t n)
{
    const int pw = SVG_W - SVG_L - SVG_R, ph = SVG_H - SVG_TOP - SVG_B;
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='1.5' points='", svg_colors[fi % 15]);
    char last[64] = "";
    for (size_t k = 0; k < n; k++) {
        double lx = fpr[k] > 0 ? log10(fpr[k]) : -8;
        if (lx < -8)
            lx = -8;
        char pt[64];
        snprintf(pt, sizeof pt, "%.1f,%.1f ", SVG_L + (lx + 8) / 8 * pw, SVG_TOP + ph - rec[k] * ph);
        if (strcmp(pt, last))
            fputs(pt, f);
        memcpy(last, pt, sizeof last);
    }
    fprintf(f, "'/>\n<text x='%d' y='%zu' fill='%s'>%s</text>\n", SVG_L + pw + 10,
            SVG_TOP + 12 + fi * 16, svg_colors[fi % 15], label);
}

static void svg_end(FILE *f)
{
    fprintf(f, "</svg>\n");
    fclose(f);
}

static void svg_roc(const char *path, const struct algo *a, double (*roc)[NT][1025][2],
                    const struct families *F)
{
    FILE *f = svg_begin(path, a->name);
    if (!f)
        return;
    static double fpr[1025], rec[1025];
    for (size_t fi = 0; fi < F->n; fi++) {
        /* average the family's transforms' recall at each threshold */
        for (unsigned t = 0; t <= a->bits; t++) {
            double x = 0, tpr = 0;
            int cnt = 0;
            for (size_t k = 0; k < NT; k++)
                if (F->of[k] == (int)fi) {
                    x = (*roc)[k][t][0];
                    tpr += (*roc)[k][t][1];
                    cnt++;
                }
            fpr[t] = x;
            rec[t] = tpr / (cnt ? cnt : 1);
        }
        svg_curve(f, fi, F->name[fi], fpr, rec, a->bits + 1);
    }
    svg_end(f);
}

/* Wilson score interval, 95%, for hits of n (hits may be fractional: a mean recall times n). */
static void wilson95(double hits, double n, double ci[2])
{
    if (n <= 0) {
        ci[0] = 0;
        ci[1] = 1;
        return;
    }
    const double z = 1.959963984540054, z2 = z * z;
    double p = hits / n, den = 1 + z2 / n;
    double c = (p + z2 / (2 * n)) / den;
    double h = z / den * sqrt(p * (1 - p) / n + z2 / (4 * n * n));
    ci[0] = c - h < 0 ? 0 : c - h > p ? p : c - h;
    ci[1] = c + h > 1 ? 1 : c + h < p ? p : c + h;
}

/* Photos of one group (--groups) are never each other's unrelated pairs. */
static int same_group(const int *gid, size_t x, size_t y)
{
    return gid[x] >= 0 && gid[x] == gid[y];
}

/* Does a --groups line's path name this photo: the same string, the path relative to the photo
 * folder, or (a line without '/') the photo's file name. */
static int group_path_matches(const char *photo, const char *dir, const char *given)
{
    if (!strcmp(photo, given))
        return 1;
    size_t dl = strlen(dir);
    if (!strncmp(photo, dir, dl) && (photo[dl] == '/' || (dl && dir[dl - 1] == '/'))) {
        const char *rel = photo + dl;
        while (*rel == '/')
            rel++;
        if (!strcmp(rel, given))
            return 1;
    }
    if (!strchr(given, '/')) {
        const char *b = strrchr(photo, '/');
        return !strcmp(b ? b + 1 : photo, given);
    }
    return 0;
}

/* Reads FILE (lines "path<TAB>group"; empty lines and lines starting with '#' skipped) into
 * gid[nimg] (-1: in no group). 0, or -1 with a message on stderr. */
static int read_groups(const char *file, const char *dir, char *const *photos, size_t nimg, int *gid)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        fprintf(stderr, "nhbench-quality: %s: %s\n", file, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t nnames = 0, lineno = 0, unmatched = 0, grouped = 0;
    int rc = 0;
    char line[8192];
    for (size_t x = 0; x < nimg; x++)
        gid[x] = -1;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *tab = strchr(line, '\t');
        if (!tab || tab == line || !tab[1]) {
            fprintf(stderr, "nhbench-quality: %s:%zu: want \"path<TAB>group\"\n", file, lineno);
            rc = -1;
            break;
        }
        *tab = '\0';
        size_t g = 0;
        while (g < nnames && strcmp(names[g], tab + 1))
            g++;
        if (g == nnames) {
            char **n2 = realloc(names, (nnames + 1) * sizeof *names);
            if (!n2 || !(n2[nnames] = strdup(tab + 1))) {
                names = n2 ? n2 : names;
                rc = -1;
                break;
            }
            names = n2;
            nnames++;
        }
        int hit = 0;
        for (size_t x = 0; x < nimg; x++)
            if (group_path_matches(photos[x], dir, line)) {
                hit = 1;
                if (gid[x] < 0) {
                    gid[x] = (int)g;
                    grouped++;
                }
            }
        unmatched += !hit;
    }
    fclose(f);
    for (size_t g = 0; g < nnames; g++)
        free(names[g]);
    free(names);
    if (!rc)
        printf("groups: %zu of %zu photos in %zu groups from %s (%zu lines named no photo)\n",
               grouped, nimg, nnames, file, unmatched);
    return rc;
}

/* ---- decision rules: a neural model and PDQ together ----
 *
 * Every pair of a (non-mirror) neural model and PDQ is measured over the pairs both hashed: the
 * unrelated pairs' joint histogram (neural distance x PDQ distance) and each copy's two distances.
 * A rule is a region of that plane, "a match": AND (dn <= tn and dp <= tp), OR (either), or fused
 * (-log10(FPRn(dn) * FPRp(dp)) >= s, each distance turned into its false-positive rate under that
 * hash's unrelated distribution, smoothed as (pairs <= d + 0.5) / (N + 1) so that a distance below
 * every unrelated one is not 0). A region's false-positive rate is the share of the joint
 * unrelated pairs in it; its recall per transform the share of copies in it. */

#define NTARGETS 2
static const double targets[NTARGETS] = {1e-4, 1e-6};
static const char *const target_names[NTARGETS] = {"1e-4", "1e-6"};

enum rule { RULE_NEURAL, RULE_PDQ, RULE_AND, RULE_OR, RULE_FUSED };

struct joint {
    const struct algo *an, *ap;
    const struct families *F;
    unsigned bn, bp;
    size_t w;        /* row stride of the cumulative tables: bp + 2 */
    size_t cells;    /* (bn + 1) * (bp + 1) */
    size_t ccells;   /* (bn + 2) * w */
    size_t nimg;
    double npairs;   /* unrelated pairs hashed by both */
    double *uh;      /* cells: unrelated pairs at [dn * (bp + 1) + dp] */
    double *uc;      /* ccells: unrelated pairs with dn < i and dp < j at [i * w + j] */
    double *fn, *fp; /* bn + 1, bp + 1: smoothed single-hash FPR at each distance */
    int *pd;         /* NT x nimg x 2: each copy's (dn, dp); -1 when a hash is missing */
    size_t npos[NT]; /* copies of each transform with both distances */
    size_t ntv;      /* transforms with at least one such copy */
    /* (F->n + 1) layers of cells / ccells: each copy of transform t weighs 1 / (npos[t] x the
     * transforms of its family with copies), so a region's sum in layer f is family f's mean
     * recall; the last layer weighs by all ntv transforms (the mean over transforms) */
    double *wh, *wc;
};

static void joint_free(struct joint *J)
{
    free(J->uh);
    free(J->uc);
    free(J->fn);
    free(J->fp);
    free(J->pd);
    free(J->wh);
    free(J->wc);
}

static void cumulate(const double *h, double *c, size_t rows, size_t cols)
{
    size_t w = cols + 1;
    memset(c, 0, (rows + 1) * w * sizeof *c);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++)
            c[(i + 1) * w + j + 1] = h[i * cols + j] + c[i * w + j + 1] + c[(i + 1) * w + j] - c[i * w + j];
}

/* 0, or -1 when out of memory (J is then freed). */
static int joint_build(struct joint *J, const struct algo *an, const struct algo *ap, size_t nimg,
                       const int *gid, const struct families *F)
{
    memset(J, 0, sizeof *J);
    J->an = an;
    J->ap = ap;
    J->F = F;
    J->bn = an->bits;
    J->bp = ap->bits;
    J->w = J->bp + 2;
    J->cells = (size_t)(J->bn + 1) * (J->bp + 1);
    J->ccells = (size_t)(J->bn + 2) * J->w;
    J->nimg = nimg;
    size_t L = F->n + 1;
    J->uh = calloc(J->cells, sizeof *J->uh);
    J->uc = calloc(J->ccells, sizeof *J->uc);
    J->fn = calloc(J->bn + 1, sizeof *J->fn);
    J->fp = calloc(J->bp + 1, sizeof *J->fp);
    J->pd = malloc(NT * nimg * 2 * sizeof *J->pd);
    J->wh = calloc(L * J->cells, sizeof *J->wh);
    J->wc = calloc(L * J->ccells, sizeof *J->wc);
    if (!J->uh || !J->uc || !J->fn || !J->fp || !J->pd || !J->wh || !J->wc) {
        joint_free(J);
        return -1;
    }
    size_t cols = J->bp + 1;
    for (size_t x = 0; x < nimg; x++) {
        size_t so = x * (NT + 1);
        if (!an->ok[so] || !ap->ok[so])
            continue;
        for (size_t y = 0; y < nimg; y++) {
            if (y == x || same_group(gid, x, y))
                continue;
            for (size_t t = 0; t <= NT; t++) {
                size_t s = y * (NT + 1) + t;
                if (!an->ok[s] || !ap->ok[s])
                    continue;
                J->uh[dist(an, so, s) * cols + dist(ap, so, s)]++;
                J->npairs++;
            }
        }
    }
    cumulate(J->uh, J->uc, J->bn + 1, cols);
    for (unsigned d = 0; d <= J->bn; d++)
        J->fn[d] = (J->uc[(d + 1) * J->w + J->bp + 1] + 0.5) / (J->npairs + 1);
    for (unsigned d = 0; d <= J->bp; d++)
        J->fp[d] = (J->uc[(J->bn + 1) * J->w + d + 1] + 0.5) / (J->npairs + 1);
    size_t tf[NT] = {0}; /* transforms with copies per family */
    for (size_t t = 0; t < NT; t++) {
        for (size_t x = 0; x < nimg; x++) {
            size_t so = x * (NT + 1), st = so + t + 1;
            int *p = J->pd + (t * nimg + x) * 2;
            p[0] = p[1] = -1;
            if (!an->ok[so] || !an->ok[st] || !ap->ok[so] || !ap->ok[st])
                continue;
            p[0] = (int)dist(an, so, st);
            p[1] = (int)dist(ap, so, st);
            J->npos[t]++;
        }
        if (J->npos[t]) {
            J->ntv++;
            tf[F->of[t]]++;
        }
    }
    for (size_t t = 0; t < NT; t++) {
        if (!J->npos[t])
            continue;
        size_t f = (size_t)F->of[t];
        for (size_t x = 0; x < nimg; x++) {
            const int *p = J->pd + (t * nimg + x) * 2;
            if (p[0] < 0)
                continue;
            size_t cell = (size_t)p[0] * cols + (size_t)p[1];
            J->wh[f * J->cells + cell] += 1.0 / ((double)J->npos[t] * (double)tf[f]);
            J->wh[F->n * J->cells + cell] += 1.0 / ((double)J->npos[t] * (double)J->ntv);
        }
    }
    for (size_t f = 0; f < L; f++)
        cumulate(J->wh + f * J->cells, J->wc + f * J->ccells, J->bn + 1, cols);
    return 0;
}

/* The sum of cumulative table c over the region of rule r at thresholds (tn, tp), -1 = none. */
static double region_sum(const struct joint *J, const double *c, enum rule r, int tn, int tp)
{
    size_t i = (size_t)(tn + 1), j = (size_t)(tp + 1), I = J->bn + 1, Jm = J->bp + 1, w = J->w;
    switch (r) {
    case RULE_NEURAL:
        return c[i * w + Jm];
    case RULE_PDQ:
        return c[I * w + j];
    case RULE_AND:
        return c[i * w + j];
    case RULE_OR:
        return c[i * w + Jm] + c[I * w + j] - c[i * w + j];
    case RULE_FUSED:
        break;
    }
    return 0;
}

/* The most unrelated pairs a region may hold for a target rate. */
static double allowed(const struct joint *J, double target)
{
    return target * J->npairs * (1 + 1e-12);
}

/* The largest single-hash threshold with FPR <= target over the joint pairs (-1: none). */
static int single_threshold(const struct joint *J, enum rule r, double target)
{
    int best = -1;
    unsigned bits = r == RULE_NEURAL ? J->bn : J->bp;
    for (int d = 0; d <= (int)bits; d++)
        if (region_sum(J, J->uc, r, d, d) <= allowed(J, target))
            best = d;
    return best;
}

/* AND or OR: the (tn, tp) with the highest mean recall over the transforms whose joint FPR is
 * <= target; ties go to fewer unrelated pairs, then to the smaller thresholds. */
static void grid_pick(const struct joint *J, enum rule r, double target, int *tn, int *tp)
{
    const double *all = J->wc + J->F->n * J->ccells;
    double best = -1, bestu = 0, bests = 0, lim = allowed(J, target);
    *tn = *tp = -1;
    for (int a = -1; a <= (int)J->bn; a++)
        for (int b = -1; b <= (int)J->bp; b++) {
            double u = region_sum(J, J->uc, r, a, b);
            if (u > lim)
                continue;
            double m = region_sum(J, all, r, a, b);
            double size = (a + 1.0) / (J->bn + 1) + (b + 1.0) / (J->bp + 1);
            if (m > best + 1e-12 || (m >= best - 1e-12 && (u < bestu || (u == bestu && size < bests)))) {
                best = m;
                bestu = u;
                bests = size;
                *tn = a;
                *tp = b;
            }
        }
}

static double fused_score(const struct joint *J, int dn, int dp)
{
    return -log10(J->fn[dn]) - log10(J->fp[dp]);
}

struct scored {
    double s;
    size_t cell;
};

static int by_score_desc(const void *a, const void *b)
{
    double x = ((const struct scored *)a)->s, y = ((const struct scored *)b)->s;
    return x > y ? -1 : x < y;
}

/* Returned-owned: the cells in falling order of fused score. */
static struct scored *fused_order(const struct joint *J)
{
    struct scored *c = malloc(J->cells * sizeof *c);
    if (!c)
        return NULL;
    size_t cols = J->bp + 1;
    for (size_t k = 0; k < J->cells; k++) {
        c[k].cell = k;
        c[k].s = fused_score(J, (int)(k / cols), (int)(k % cols));
    }
    qsort(c, J->cells, sizeof *c, by_score_desc);
    return c;
}

/* Cells whose scores differ by less than this are one level (equal counts give equal scores). */
#define SCORE_EPS 1e-9

/* The lowest fused score threshold whose joint FPR is <= target (INFINITY: none). */
static double fused_pick(const struct joint *J, const struct scored *c, double target)
{
    double u = 0, lim = allowed(J, target), thr = INFINITY;
    for (size_t k = 0; k < J->cells;) {
        size_t e = k;
        while (e < J->cells && c[k].s - c[e].s < SCORE_EPS)
            u += J->uh[c[e++].cell];
        if (u > lim)
            break;
        thr = c[e - 1].s;
        k = e;
    }
    return thr;
}

/* One rule at one target, evaluated. */
struct pick {
    enum rule rule;
    const char *name;  /* "neural", "pdq", "and", "and_conservative", "or", "fused" */
    const char *basis; /* "single": thresholds from each hash's own unrelated distances; "joint" */
    int tn, tp;        /* thresholds, -1: nothing within (unused ones: see rule) */
    double score;      /* fused: the threshold on -log10(FPRn * FPRp); INFINITY: nothing matches */
    double uhits;      /* unrelated pairs in the region */
    size_t hits[NT], hn[NT], hp[NT]; /* copies in it; neural alone at tn, PDQ alone at tp */
    double mean;       /* mean recall over the transforms with copies */
    double frec[NT], fci[NT][2];
    size_t fimg[NT];   /* per family: mean recall, its interval over fimg images (the fewest of its
                        * transforms' copies) */
};

static int rule_match(const struct joint *J, const struct pick *k, int dn, int dp)
{
    switch (k->rule) {
    case RULE_NEURAL:
        return dn <= k->tn;
    case RULE_PDQ:
        return dp <= k->tp;
    case RULE_AND:
        return dn <= k->tn && dp <= k->tp;
    case RULE_OR:
        return dn <= k->tn || dp <= k->tp;
    case RULE_FUSED:
        return fused_score(J, dn, dp) >= k->score - SCORE_EPS;
    }
    return 0;
}

static void pick_eval(const struct joint *J, struct pick *k)
{
    const struct families *F = J->F;
    size_t cols = J->bp + 1;
    k->uhits = 0;
    for (size_t c = 0; c < J->cells; c++)
        if (J->uh[c] && rule_match(J, k, (int)(c / cols), (int)(c % cols)))
            k->uhits += J->uh[c];
    k->mean = 0;
    for (size_t t = 0; t < NT; t++) {
        k->hits[t] = k->hn[t] = k->hp[t] = 0;
        for (size_t x = 0; x < J->nimg; x++) {
            const int *p = J->pd + (t * J->nimg + x) * 2;
            if (p[0] < 0)
                continue;
            k->hits[t] += (size_t)rule_match(J, k, p[0], p[1]);
            k->hn[t] += p[0] <= k->tn;
            k->hp[t] += p[1] <= k->tp;
        }
        if (J->npos[t])
            k->mean += (double)k->hits[t] / (double)J->npos[t] / (double)J->ntv;
    }
    for (size_t f = 0; f < F->n; f++) {
        double sum = 0;
        size_t cnt = 0, img = 0;
        for (size_t t = 0; t < NT; t++)
            if (F->of[t] == (int)f && J->npos[t]) {
                sum += (double)k->hits[t] / (double)J->npos[t];
                img = !cnt || J->npos[t] < img ? J->npos[t] : img;
                cnt++;
            }
        k->frec[f] = cnt ? sum / (double)cnt : 0;
        k->fimg[f] = img;
        wilson95(k->frec[f] * (double)img, (double)img, k->fci[f]);
    }
}

enum { P_NEURAL, P_PDQ, P_AND, P_AND_CONS, P_OR, P_FUSED, NPICKS };

static void picks_make(const struct joint *J, const struct scored *order, double target,
                       struct pick *k)
{
    static const char *const names[NPICKS] = {"neural", "pdq", "and", "and_conservative", "or", "fused"};
    static const enum rule rules[NPICKS] = {RULE_NEURAL, RULE_PDQ, RULE_AND, RULE_AND, RULE_OR, RULE_FUSED};
    for (size_t i = 0; i < NPICKS; i++) {
        memset(&k[i], 0, sizeof k[i]);
        k[i].rule = rules[i];
        k[i].name = names[i];
        k[i].basis = i == P_NEURAL || i == P_PDQ || i == P_AND_CONS ? "single" : "joint";
        k[i].tn = k[i].tp = -1;
        k[i].score = INFINITY;
    }
    k[P_NEURAL].tn = k[P_AND_CONS].tn = single_threshold(J, RULE_NEURAL, target);
    k[P_PDQ].tp = k[P_AND_CONS].tp = single_threshold(J, RULE_PDQ, target);
    grid_pick(J, RULE_AND, target, &k[P_AND].tn, &k[P_AND].tp);
    grid_pick(J, RULE_OR, target, &k[P_OR].tn, &k[P_OR].tp);
    k[P_FUSED].score = fused_pick(J, order, target);
    for (size_t i = 0; i < NPICKS; i++)
        pick_eval(J, &k[i]);
}

static const char *selection_text(size_t i, int resolvable)
{
    switch (i) {
    case P_NEURAL:
    case P_PDQ:
        return "single hash: the largest threshold with FPR <= target";
    case P_AND:
    case P_OR:
        return resolvable ? "the (neural, PDQ) thresholds with the highest mean recall over the "
                            "transforms whose joint FPR <= target"
                          : "the (neural, PDQ) thresholds with the highest mean recall over the "
                            "transforms and no unrelated pair observed: below resolution, optimistic";
    case P_AND_CONS:
        return "each hash at its own single-hash threshold for the target: FPR <= the smaller of "
               "the two single-hash FPRs, whatever their correlation";
    default:
        return resolvable ? "the lowest score threshold whose joint FPR <= target"
                          : "the lowest score threshold with no unrelated pair observed: below "
                            "resolution, optimistic";
    }
}

static void json_ci(FILE *js, const double ci[2])
{
    fprintf(js, "[%.4f,%.4f]", ci[0], ci[1]);
}

/* Entry i of k (the picks of target ti), or with ti == NTARGETS the --and pair k[i] alone. */
static void pick_json(FILE *js, const struct joint *J, size_t i, const struct pick *k,
                      size_t ti, int first)
{
    const struct families *F = J->F;
    int given = ti == NTARGETS;
    int resolvable = !given && targets[ti] * J->npairs >= 1;
    double fci[2];
    wilson95(k[i].uhits, J->npairs, fci);
    fprintf(js, "%s{\"pair\":\"%s+%s\",\"neural\":\"%s\",\"pdq\":\"%s\",\"rule\":\"%s\",\"basis\":\"%s\","
                "\"selection\":\"%s\",\"fpr_target\":%s,\"resolvable\":%s,\"unrelated_pairs\":%.0f,"
                "\"unrelated_matched\":%.0f,\"fpr_observed\":%.3g,\"fpr_ci95\":[%.3g,%.3g]",
            first ? "" : ",", J->an->name, J->ap->name, J->an->name, J->ap->name, k[i].name, k[i].basis,
            given ? "given on the command line (--and)" : selection_text(i, resolvable),
            given ? "null" : target_names[ti], given ? "null" : resolvable ? "true" : "false", J->npairs,
            k[i].uhits, J->npairs ? k[i].uhits / J->npairs : 0, fci[0], fci[1]);
    if (k[i].rule != RULE_PDQ && k[i].rule != RULE_FUSED)
        fprintf(js, ",\"threshold_neural\":%d", k[i].tn);
    if (k[i].rule != RULE_NEURAL && k[i].rule != RULE_FUSED)
        fprintf(js, ",\"threshold_pdq\":%d", k[i].tp);
    if (k[i].rule == RULE_FUSED) {
        if (isinf(k[i].score))
            fprintf(js, ",\"threshold_score\":null");
        else
            fprintf(js, ",\"threshold_score\":%.6f", k[i].score);
        fprintf(js, ",\"score\":\"-log10(FPRn(dn)*FPRp(dp)), FPR(d)=(unrelated pairs<=d + 0.5)/(N + 1)\"");
    }
    fprintf(js, ",\"mean_recall\":%.4f,\"transforms\":[", k[i].mean);
    for (size_t t = 0; t < NT; t++) {
        double n = (double)J->npos[t], ci[2];
        wilson95((double)k[i].hits[t], n, ci);
        fprintf(js, "%s{\"name\":\"%s\",\"family\":\"%s\",\"pairs\":%zu,\"matched\":%zu,\"recall\":%.4f,\"ci95\":",
                t ? "," : "", T[t].name, T[t].family, J->npos[t], k[i].hits[t],
                n ? (double)k[i].hits[t] / n : 0);
        json_ci(js, ci);
        if (k[i].rule == RULE_AND || k[i].rule == RULE_OR)
            fprintf(js, ",\"recall_neural_alone\":%.4f,\"recall_pdq_alone\":%.4f",
                    n ? (double)k[i].hn[t] / n : 0, n ? (double)k[i].hp[t] / n : 0);
        fprintf(js, "}");
    }
    fprintf(js, "],\"families\":[");
    for (size_t f = 0; f < F->n; f++) {
        fprintf(js, "%s{\"family\":\"%s\",\"images\":%zu,\"recall\":%.4f,\"ci95\":", f ? "," : "",
                F->name[f], k[i].fimg[f], k[i].frec[f]);
        json_ci(js, k[i].fci[f]);
        if (k[i].rule == RULE_AND && !given) {
            int pn = k[P_NEURAL].frec[f] >= k[P_PDQ].frec[f];
            double best = pn ? k[P_NEURAL].frec[f] : k[P_PDQ].frec[f];
            fprintf(js, ",\"best_single\":\"%s\",\"best_single_recall\":%.4f,\"loss_vs_best_single\":%.4f",
                    pn ? "neural" : "pdq", best, best - k[i].frec[f]);
        }
        fprintf(js, "}");
    }
    fprintf(js, "]}");
}

static void pick_thresholds(char *buf, size_t len, const struct pick *k)
{
    switch (k->rule) {
    case RULE_NEURAL:
        snprintf(buf, len, "n<=%d", k->tn);
        break;
    case RULE_PDQ:
        snprintf(buf, len, "p<=%d", k->tp);
        break;
    case RULE_AND:
        snprintf(buf, len, "n<=%d & p<=%d", k->tn, k->tp);
        break;
    case RULE_OR:
        snprintf(buf, len, "n<=%d | p<=%d", k->tn, k->tp);
        break;
    case RULE_FUSED:
        if (isinf(k->score))
            snprintf(buf, len, "none");
        else
            snprintf(buf, len, "score>=%.3f", k->score);
        break;
    }
}

static void picks_print(const struct joint *J, const struct pick *k, size_t ti)
{
    const struct families *F = J->F;
    int resolvable = targets[ti] * J->npairs >= 1;
    printf("  FPR <= %s%s\n", target_names[ti],
           resolvable ? ""
                      : " (below this sample's resolution: and/or/fused are the best regions with no "
                        "unrelated pair observed, optimistic; and_conservative holds each hash at its "
                        "own threshold, so its FPR is at most either hash's)");
    for (size_t i = 0; i < NPICKS; i++) {
        char th[64];
        double fci[2];
        pick_thresholds(th, sizeof th, &k[i]);
        wilson95(k[i].uhits, J->npairs, fci);
        printf("    %-17s %-6s %-16s unrelated %.0f of %.0f (FPR %.2g, 95%% CI %.2g-%.2g), mean recall %.3f\n",
               k[i].name, k[i].basis, th, k[i].uhits, J->npairs, k[i].uhits / J->npairs, fci[0], fci[1],
               k[i].mean);
    }
    printf("    %-13s %4s", "family", "imgs");
    for (size_t i = 0; i < NPICKS; i++)
        printf(" %-17s", k[i].name);
    printf(" %8s %9s\n", "and-loss", "cons-loss");
    for (size_t f = 0; f < F->n; f++) {
        printf("    %-13s %4zu", F->name[f], k[P_AND].fimg[f]);
        for (size_t i = 0; i < NPICKS; i++)
            printf(" %.3f [%.2f,%.2f]", k[i].frec[f], k[i].fci[f][0], k[i].fci[f][1]);
        double best = k[P_NEURAL].frec[f] > k[P_PDQ].frec[f] ? k[P_NEURAL].frec[f] : k[P_PDQ].frec[f];
        printf(" %8.3f %9.3f\n", best - k[P_AND].frec[f], best - k[P_AND_CONS].frec[f]);
    }
}

struct roc_pt {
    double u, m;
};

static int by_u(const void *a, const void *b)
{
    const struct roc_pt *x = a, *y = b;
    return x->u < y->u ? -1 : x->u > y->u ? 1 : (x->m > y->m) - (x->m < y->m);
}

/* The frontier of n points (unrelated pairs, recall), sorted here: the best recall at each FPR,
 * drawn where it rises, and out to the largest FPR. */
static void svg_frontier(FILE *f, size_t fi, const char *label, struct roc_pt *p, size_t n, double N,
                         double *fx, double *fy)
{
    qsort(p, n, sizeof *p, by_u);
    double best = -1;
    size_t m = 0;
    for (size_t k = 0; k < n; k++) {
        int end = k + 1 == n || p[k + 1].u != p[k].u;
        if (p[k].m > best)
            best = p[k].m;
        if (end && (m == 0 || best > fy[m - 1] || k + 1 == n)) {
            fx[m] = p[k].u / N;
            fy[m++] = best;
        }
    }
    svg_curve(f, fi, label, fx, fy, m);
}

static void svg_rule(const char *path, const struct joint *J, enum rule r, const struct scored *order)
{
    static const char *const rn[] = {"neural", "pdq", "AND", "OR", "fused"};
    char what[512];
    snprintf(what, sizeof what, "%s %s %s%s", J->an->name, rn[r], J->ap->name,
             r == RULE_FUSED ? " (fused score)" : " (best over both thresholds)");
    FILE *f = svg_begin(path, what);
    size_t G = (size_t)(J->bn + 2) * (J->bp + 2), n = r == RULE_FUSED ? J->cells : G;
    struct roc_pt *p = malloc(n * sizeof *p);
    double *fx = malloc(n * sizeof *fx), *fy = malloc(n * sizeof *fy);
    if (!f || !p || !fx || !fy)
        goto cleanup;
    for (size_t fi = 0; fi < J->F->n; fi++) {
        const double *wc = J->wc + fi * J->ccells, *wh = J->wh + fi * J->cells;
        if (r == RULE_FUSED) {
            double u = 0, m = 0;
            for (size_t k = 0; k < J->cells; k++) {
                u += J->uh[order[k].cell];
                m += wh[order[k].cell];
                p[k].u = u;
                p[k].m = m;
            }
        } else {
            size_t k = 0;
            for (int a = -1; a <= (int)J->bn; a++)
                for (int b = -1; b <= (int)J->bp; b++, k++) {
                    p[k].u = region_sum(J, J->uc, r, a, b);
                    p[k].m = region_sum(J, wc, r, a, b);
                }
        }
        svg_frontier(f, fi, J->F->name[fi], p, n, J->npairs, fx, fy);
    }
cleanup:
    if (f)
        svg_end(f);
    free(p);
    free(fx);
    free(fy);
}

/* Every non-mirror neural model with PDQ: the "rules" array of quality.json, a summary on stdout
 * and roc_{and,or,fused}_<model>_pdq.svg. */
static void report_rules(FILE *js, struct algo *algs, size_t nalg, size_t nimg, const int *gid,
                         const struct families *F, const char *outdir, const int *and_given)
{
    const struct algo *pdq = NULL;
    for (size_t k = 0; k < nalg; k++)
        if (algs[k].kinds & NH_KIND_BIT(NH_KIND_PDQ))
            pdq = &algs[k];
    int first = 1;
    for (size_t k = 0; pdq && k < nalg; k++) {
        const struct algo *a = &algs[k];
        if (a == pdq || a->mirror)
            continue;
        struct joint J;
        if (joint_build(&J, a, pdq, nimg, gid, F)) {
            fprintf(stderr, "nhbench-quality: out of memory for the rules of %s\n", a->name);
            continue;
        }
        struct scored *order = fused_order(&J);
        if (!order) {
            joint_free(&J);
            continue;
        }
        printf("\nrules: %s with %s, %.0f unrelated pairs hashed by both (the smallest FPR they can "
               "show: %.2g); recall per family [Wilson 95%% interval over images]\n",
               a->name, pdq->name, J.npairs, J.npairs ? 1 / J.npairs : 1.0);
        for (size_t ti = 0; ti < NTARGETS; ti++) {
            struct pick pk[NPICKS];
            picks_make(&J, order, targets[ti], pk);
            picks_print(&J, pk, ti);
            for (size_t i = 0; i < NPICKS; i++, first = 0)
                pick_json(js, &J, i, pk, ti, first);
        }
        if (and_given) {
            struct pick g;
            memset(&g, 0, sizeof g);
            g.rule = RULE_AND;
            g.name = "and_given";
            g.basis = "given";
            g.tn = and_given[0];
            g.tp = and_given[1];
            pick_eval(&J, &g);
            double fci[2];
            wilson95(g.uhits, J.npairs, fci);
            printf("  --and n<=%d & p<=%d: unrelated %.0f of %.0f (FPR %.2g, 95%% CI %.2g-%.2g), mean "
                   "recall %.3f\n    %-13s %4s %-17s\n",
                   g.tn, g.tp, g.uhits, J.npairs, g.uhits / J.npairs, fci[0], fci[1], g.mean, "family",
                   "imgs", "and_given");
            for (size_t f = 0; f < F->n; f++)
                printf("    %-13s %4zu %.3f [%.2f,%.2f]\n", F->name[f], g.fimg[f], g.frec[f], g.fci[f][0],
                       g.fci[f][1]);
            pick_json(js, &J, 0, &g, NTARGETS, first);
            first = 0;
        }
        char safe[128];
        snprintf(safe, sizeof safe, "%s", a->name);
        for (char *s = safe; *s; s++)
            if (*s == ':' || *s == '/' || *s == '.')
                *s = '_';
        static const struct {
            enum rule r;
            const char *name;
        } plots[] = {{RULE_AND, "and"}, {RULE_OR, "or"}, {RULE_FUSED, "fused"}};
        for (size_t i = 0; i < 3; i++) {
            char svg[4096];
            snprintf(svg, sizeof svg, "%s/roc_%s_%s_pdq.svg", outdir, plots[i].name, safe);
            svg_rule(svg, &J, plots[i].r, order);
        }
        free(order);
        joint_free(&J);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: nhbench-quality [--model M.nhm]... [--mirror] [--no-pdq] [--groups FILE] "
               "[--and TN,TP] [--max N] [--out DIR] PHOTO_DIR\n\n"
               "Robustness of each hash per transform of the photos in PHOTO_DIR: distances,\n"
               "recall at FPR 1e-4 and 1e-6, ROC curves (OUT/quality.json, OUT/roc_*.svg).\n\n"
               "  --model M.nhm   a neural model to compare (repeat for up to 8)\n"
               "  --mirror        also report each model with mirror queries\n"
               "  --no-pdq        leave PDQ out\n"
               "  --groups FILE   near-duplicate groups: lines \"path<TAB>group\" (empty lines and\n"
               "                  lines starting with '#' skipped); path is the photo's path as\n"
               "                  listed, its path relative to PHOTO_DIR, or (without a '/') its\n"
               "                  file name. Photos of one group are never counted as unrelated\n"
               "                  pairs of each other (a photo's copies are only its own positives)\n"
               "  --and TN,TP     also evaluate the AND rule at these radii (neural TN bits, PDQ\n"
               "                  TP bits, e.g. nhash audit's 12,31): rule \"and_given\", fpr_target\n"
               "                  null\n"
               "  --max N         at most N photos (default 200)\n"
               "  --out DIR       results folder (default bench-quality)\n"
               "  -h, --help      this help\n\n"
               "Unrelated pairs: each original against the original and every copy of each other\n"
               "photo (not of its group). The threshold for a target FPR is the largest whose\n"
               "share of unrelated pairs within it is <= the target; with N pairs an FPR below 1/N\n"
               "cannot be observed, so a target below that is 'below resolution' (the threshold\n"
               "is then the largest with no unrelated pair within, an optimistic estimate).\n"
               "Every recall has a Wilson 95%% interval over the images (the copies of one\n"
               "transform; a family's mean recall over the fewest copies of its transforms).\n\n"
               "Decision rules: each neural model without --mirror is also paired with PDQ, over\n"
               "the pairs both hashed (a 2-D histogram of unrelated pairs, neural distance x PDQ\n"
               "distance), at FPR 1e-4 and 1e-6 on those joint pairs:\n"
               "  and               neural <= tn AND PDQ <= tp: the (tn, tp) with the highest\n"
               "                    mean recall over the transforms and joint FPR <= target\n"
               "  and_conservative  tn, tp each hash's own single-hash threshold for the target:\n"
               "                    its FPR is at most either hash's, whatever their correlation\n"
               "  or                neural <= tn OR PDQ <= tp, chosen as for and\n"
               "  fused             -log10(FPRn(dn) * FPRp(dp)) >= s, each distance's single-hash\n"
               "                    FPR smoothed as (unrelated pairs <= d + 0.5) / (N + 1); s the\n"
               "                    lowest with joint FPR <= target\n"
               "  neural, pdq       each hash alone at its threshold over the same pairs\n"
               "A threshold of -1 matches nothing (an OR with n<=-1 is PDQ alone). Mean recall is\n"
               "over all the transforms (flips and rot90 included).\n"
               "The summary gives per family every rule's recall and the loss of and (and of\n"
               "and_conservative) against the better single hash. quality.json's \"rules\" array\n"
               "holds one object per (pair, target, rule): pair, neural, pdq, rule, basis\n"
               "(\"joint\" or \"single\": where the thresholds come from), selection, fpr_target,\n"
               "resolvable, unrelated_pairs, unrelated_matched, fpr_observed, fpr_ci95,\n"
               "threshold_neural / threshold_pdq / threshold_score, mean_recall, transforms[]\n"
               "(name, family, pairs, matched, recall, ci95; and/or: recall_neural_alone,\n"
               "recall_pdq_alone at the same thresholds) and families[] (family, images, recall,\n"
               "ci95; and: best_single, best_single_recall, loss_vs_best_single). ROC frontiers\n"
               "(the best recall at each FPR over the thresholds) per rule:\n"
               "OUT/roc_{and,or,fused}_<model>_pdq.svg.\n");
}

int main(int argc, char **argv)
{
    const char *models[8];
    size_t nmodels = 0, max = 200;
    int pdq = 1, mirror = 0;
    const char *outdir = "bench-quality", *groups = NULL;
    int and_given[2] = {0, 0}, have_and = 0;
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
        else if (!strcmp(argv[i], "--groups") && i + 1 < argc)
            groups = argv[++i];
        else if (!strcmp(argv[i], "--and") && i + 1 < argc) {
            char end;
            if (sscanf(argv[++i], "%d,%d%c", &and_given[0], &and_given[1], &end) != 2 ||
                and_given[0] < 0 || and_given[0] > 1024 || and_given[1] < 0 || and_given[1] > 256) {
                fprintf(stderr, "nhbench-quality: --and wants NEURAL,PDQ radii, e.g. 12,31\n");
                return 2;
            }
            have_and = 1;
        }
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
    int *gid = malloc(nimg * sizeof *gid);
    if (!gid)
        return 1;
    for (size_t x = 0; x < nimg; x++)
        gid[x] = -1;
    if (groups && read_groups(groups, argv[i], photos, nimg, gid))
        return 2;
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
    struct families F = {.n = 0};
    for (size_t t = 0; t < NT; t++) {
        size_t f = 0;
        while (f < F.n && strcmp(F.name[f], T[t].family))
            f++;
        if (f == F.n)
            F.name[F.n++] = T[t].family;
        F.of[t] = (int)f;
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
                if (y == x || same_group(gid, x, y))
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
        printf("  %-12s %-13s %6s %6s %6s %9s %9s  %-11s %-11s\n", "transform", "family", "mean", "median",
               "p90", "rec@1e-4", "rec@1e-6", "95% CI", "95% CI");
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
            double ci4[2], ci6[2];
            wilson95(rec4 * (double)n, (double)n, ci4);
            wilson95(rec6 * (double)n, (double)n, ci6);
            printf("  %-12s %-13s %6.2f %6d %6d %9.3f %9.3f  [%.2f,%.2f] [%.2f,%.2f]\n", T[t].name,
                   T[t].family, mean, med, p90, rec4, rec6, ci4[0], ci4[1], ci6[0], ci6[1]);
            fprintf(js, "%s{\"name\":\"%s\",\"family\":\"%s\",\"pairs\":%zu,\"mean\":%.3f,\"median\":%d,"
                        "\"p90\":%d,\"recall_fpr_1e-4\":%.4f,\"recall_fpr_1e-6\":%.4f,"
                        "\"recall_fpr_1e-4_ci95\":[%.4f,%.4f],\"recall_fpr_1e-6_ci95\":[%.4f,%.4f],\"histogram\":[",
                    t ? "," : "", T[t].name, T[t].family, n, mean, med, p90, rec4, rec6, ci4[0], ci4[1],
                    ci6[0], ci6[1]);
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
        svg_roc(svg, a, roc, &F);
        free(unrel);
        free(roc);
        free(fpr_at);
    }
    fprintf(js, "],\"rules\":[");
    report_rules(js, algs, nalg, nimg, gid, &F, outdir, have_and ? and_given : NULL);
    fprintf(js, "]}\n");
    fclose(js);
    printf("\nresults: %s and %s/roc_*.svg\n", jpath, outdir);
    rmdir(tmp);
    return 0;
}
