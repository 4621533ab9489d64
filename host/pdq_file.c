/*
 * PDQ from image files: the only decoder-aware part of the pdq module (links nh_decode).
 *
 * Reference path: nh_decode NEAREST mode gives the full decode (alpha dropped, no EXIF
 * rotation) squashed by nearest neighbour only along the sides that exceed 512; the
 * reference squashes both sides to exactly 512x512 as soon as one side exceeds 512, so a
 * side that fit is stretched here by the same nearest-neighbour rule (row floor(y*h/512)),
 * which gives exactly the reference's pixels. Files whose pixels are all grey take the grey
 * luma path, as the reference's decoder (ImageMagick to PNM, so PGM) makes them grey.
 *
 * Fast path: nh_decode FAST mode (vips_thumbnail shrink-on-load) straight to 512x512, used
 * only where shrink-on-load applies (JPEG, shorter side >= 1024, read from the JPEG header);
 * every other file takes the reference path.
 */
#include "nhash/decode.h"
#include "nhash/pdq.h"

#include <stdio.h>
#include <string.h>

/* Stretch an image of w x h (stored packed at the start of buf, capacity 512x512x3) to
 * 512 x 512 by nearest neighbour, in place. Every destination index is at or after its
 * source index, and is written from the end backwards, so no source is lost. */
static void stretch_to_ref(uint8_t *buf, int w, int h)
{
    const int d = NH_PDQ_REF_DIM;
    for (int y = d - 1; y >= 0; y--) {
        int sy = (int)((long long)y * h / d);
        for (int x = d - 1; x >= 0; x--) {
            int sx = (int)((long long)x * w / d);
            memmove(buf + ((size_t)y * d + x) * 3, buf + ((size_t)sy * w + sx) * 3, 3);
        }
    }
}

/* Size from a JPEG's SOF marker, reading only the header; 0 when the file is not a JPEG or
 * the header cannot be read (the caller then takes the reference path). */
static int jpeg_size(const char *path, int *w, int *h)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    int ok = 0;
    if (fgetc(f) != 0xFF || fgetc(f) != 0xD8)
        goto cleanup;
    for (int guard = 0; guard < 1000; guard++) {
        int c = fgetc(f);
        if (c != 0xFF)
            goto cleanup;
        int m;
        while ((m = fgetc(f)) == 0xFF)
            ;
        if (m == EOF || m == 0xD9 || m == 0xDA)
            goto cleanup;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue;
        int hi = fgetc(f), lo = fgetc(f);
        if (hi == EOF || lo == EOF)
            goto cleanup;
        long len = (hi << 8) | lo;
        if (len < 2)
            goto cleanup;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            unsigned char b[5];
            if (len < 7 || fread(b, 1, 5, f) != 5)
                goto cleanup;
            *h = (b[1] << 8) | b[2];
            *w = (b[3] << 8) | b[4];
            ok = *w > 0 && *h > 0;
            goto cleanup;
        }
        if (fseek(f, len - 2, SEEK_CUR) != 0)
            goto cleanup;
    }
cleanup:
    fclose(f);
    return ok;
}

/*
 * Whether shrink-on-load can pay: libvips shrinks a JPEG while decoding only by 2, 4 or 8,
 * and vips_thumbnail with both sides forced to 512 keeps both sides >= 512, so the shorter
 * side must be >= 1024. Anything else (PNG, small or mid-size JPEG) would be decoded in full
 * and then resampled, slower than the reference path and further from the reference.
 */
static int fast_pays(const char *path)
{
    int w = 0, h = 0;
    return jpeg_size(path, &w, &h) && (w < h ? w : h) >= 2 * NH_PDQ_REF_DIM;
}

nh_status nh_pdq_load_file(const char *path, unsigned flags, uint8_t *pix, nh_pdq_image *img,
                           int *src_width, int *src_height, nh_error *err)
{
    if (!path || !pix || !img)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, path,
                            "nh_pdq_load_file: bad arguments");
    nh_decode_opts opts;
    nh_decode_opts_default(&opts);
    opts.width = NH_PDQ_REF_DIM;
    opts.height = NH_PDQ_REF_DIM;
    opts.autorotate = 0;
    int fast =
        (flags & NH_PDQ_INPUT_FAST_ALWAYS) || ((flags & NH_PDQ_INPUT_FAST) && fast_pays(path));
    opts.mode = fast ? NH_DECODE_FAST : NH_DECODE_NEAREST;
    nh_decode_info info;
    nh_status st = nh_decode_file(path, &opts, pix, &info, err);
    if (st != NH_OK)
        return st;
    if (fast && info.src_width <= NH_PDQ_REF_DIM && info.src_height <= NH_PDQ_REF_DIM) {
        /* FAST resizes to 512x512 whatever the size; the reference leaves these alone. */
        opts.mode = NH_DECODE_NEAREST;
        st = nh_decode_file(path, &opts, pix, &info, err);
        if (st != NH_OK)
            return st;
    }
    int w = info.width, h = info.height;
    if ((info.src_width > NH_PDQ_REF_DIM || info.src_height > NH_PDQ_REF_DIM) &&
        (w != NH_PDQ_REF_DIM || h != NH_PDQ_REF_DIM)) {
        stretch_to_ref(pix, w, h);
        w = h = NH_PDQ_REF_DIM;
    }
    nh_pdq_image_rgb(img, pix, w, h);
    img->gray = nh_pdq_image_is_gray(img);
    if (src_width)
        *src_width = info.src_width;
    if (src_height)
        *src_height = info.src_height;
    return NH_OK;
}

nh_status nh_pdq_hash_file(const char *path, unsigned flags, uint8_t *pix, nh_pdq_scratch *s,
                           uint8_t *hashes, int *quality, int *src_width, int *src_height,
                           nh_error *err)
{
    if (!s || !path || !pix || !hashes || !quality)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, path,
                            "nh_pdq_hash_file: bad arguments");
    nh_pdq_image img;
    int sw = 0, sh = 0;
    nh_status st = nh_pdq_load_file(path, flags, pix, &img, &sw, &sh, err);
    if (st != NH_OK)
        return st;
    st = nh_pdq_hash(s, &img, flags & ~(unsigned)(NH_PDQ_INPUT_FAST | NH_PDQ_INPUT_FAST_ALWAYS),
                     hashes, quality, err);
    if (st != NH_OK) {
        if (err)
            snprintf(err->path, sizeof err->path, "%s", path);
        return st;
    }
    if (src_width)
        *src_width = sw;
    if (src_height)
        *src_height = sh;
    return NH_OK;
}
