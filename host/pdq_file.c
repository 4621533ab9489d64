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
 * Fast path: nh_decode FAST mode (vips_thumbnail shrink-on-load) straight to 512x512 for
 * images with a side over 512; smaller images are decoded as in the reference path.
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
    opts.mode = (flags & NH_PDQ_INPUT_FAST) ? NH_DECODE_FAST : NH_DECODE_NEAREST;
    nh_decode_info info;
    nh_status st = nh_decode_file(path, &opts, pix, &info, err);
    if (st != NH_OK)
        return st;
    if (opts.mode == NH_DECODE_FAST && info.src_width <= NH_PDQ_REF_DIM &&
        info.src_height <= NH_PDQ_REF_DIM) {
        /* Shrink-on-load only pays for large images; small ones are hashed as they are. */
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
    st = nh_pdq_hash(s, &img, flags & ~(unsigned)NH_PDQ_INPUT_FAST, hashes, quality, err);
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
