/*
 * PDQ from image files: the only decoder-aware part of the pdq module (links nh_decode).
 *
 * Reference path: the full decode (alpha dropped, no EXIF rotation; nh_decode_full, the same
 * decode the network's compat input comes from) squashed by nearest neighbour to exactly
 * 512x512 as soon as one side exceeds 512 (nh_decode_derive, NEAREST), as the reference does.
 * Files whose pixels are all grey take the grey luma path, as the reference's decoder
 * (ImageMagick to PNM, so PGM) makes them grey.
 *
 * Fast path: nh_decode FAST mode (vips_thumbnail shrink-on-load) straight to 512x512, used
 * only where shrink-on-load applies (JPEG, shorter side >= 1024, read from the JPEG header);
 * every other file takes the reference path.
 */
#include "nhash/decode.h"
#include "nhash/pdq.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Size from a JPEG's SOF marker, reading only the header bytes; 0 when the data is not a
 * JPEG or the header cannot be read (the caller then takes the reference path). */
static int jpeg_size(const uint8_t *d, size_t len, int *w, int *h)
{
    size_t pos = 0;
#define NEXT() (pos < len ? (int)d[pos++] : EOF)
    if (NEXT() != 0xFF || NEXT() != 0xD8)
        return 0;
    for (int guard = 0; guard < 1000; guard++) {
        if (NEXT() != 0xFF)
            return 0;
        int m;
        while ((m = NEXT()) == 0xFF)
            ;
        if (m == EOF || m == 0xD9 || m == 0xDA)
            return 0;
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7))
            continue;
        int hi = NEXT(), lo = NEXT();
        if (hi == EOF || lo == EOF)
            return 0;
        long seglen = (hi << 8) | lo;
        if (seglen < 2)
            return 0;
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) {
            if (seglen < 7 || len - pos < 5)
                return 0;
            *h = (d[pos + 1] << 8) | d[pos + 2];
            *w = (d[pos + 3] << 8) | d[pos + 4];
            return *w > 0 && *h > 0;
        }
        if ((size_t)(seglen - 2) > len - pos)
            return 0;
        pos += (size_t)(seglen - 2);
    }
#undef NEXT
    return 0;
}

/*
 * Whether shrink-on-load can pay: libvips shrinks a JPEG while decoding only by 2, 4 or 8,
 * and vips_thumbnail with both sides forced to 512 keeps both sides >= 512, so the shorter
 * side must be >= 1024. Anything else (PNG, small or mid-size JPEG) would be decoded in full
 * and then resampled, slower than the reference path and further from the reference.
 */
int nh_pdq_fast_pays(const void *data, size_t len)
{
    int w = 0, h = 0;
    return jpeg_size(data, len, &w, &h) && (w < h ? w : h) >= 2 * NH_PDQ_REF_DIM;
}

void nh_pdq_input_from_full(const uint8_t *rgb, int sw, int sh, uint8_t *pix, nh_pdq_image *img)
{
    nh_decode_opts o;
    nh_decode_opts_default(&o);
    o.mode = NH_DECODE_NEAREST;
    o.width = o.height = NH_PDQ_REF_DIM;
    nh_decode_info info;
    nh_decode_derive(rgb, sw, sh, &o, pix, &info);
    nh_pdq_image_rgb(img, pix, info.width, info.height);
    img->gray = nh_pdq_image_is_gray(img);
}

nh_status nh_pdq_input_fast(const void *data, size_t len, int fd, const char *name,
                            const nh_decode_opts *opts, uint8_t *pix, nh_pdq_image *img,
                            int *src_width, int *src_height, nh_error *err)
{
    nh_decode_opts o = *opts;
    o.mode = NH_DECODE_FAST;
    o.width = o.height = NH_PDQ_REF_DIM;
    o.autorotate = 0;
    nh_decode_info info;
    nh_status st = nh_decode_source(data, len, fd, name, &o, pix, &info, err);
    if (st != NH_OK)
        return st;
    *src_width = info.src_width;
    *src_height = info.src_height;
    if (info.src_width <= NH_PDQ_REF_DIM && info.src_height <= NH_PDQ_REF_DIM)
        return NH_ERR_UNSUPPORTED; /* FAST resized a small image: the reference leaves it */
    nh_pdq_image_rgb(img, pix, NH_PDQ_REF_DIM, NH_PDQ_REF_DIM);
    img->gray = nh_pdq_image_is_gray(img);
    return NH_OK;
}

nh_status nh_pdq_load_buffer(const void *data, size_t len, int fd, const char *name, unsigned flags,
                             const nh_decode_opts *opts, uint8_t *pix, nh_pdq_image *img,
                             int *src_width, int *src_height, nh_error *err)
{
    nh_decode_opts local;
    if (!opts) {
        nh_decode_opts_default(&local);
        opts = &local;
    }
    int sw = 0, sh = 0;
    int fast = (flags & NH_PDQ_INPUT_FAST_ALWAYS) ||
               ((flags & NH_PDQ_INPUT_FAST) && nh_pdq_fast_pays(data, len));
    nh_status st = NH_ERR_UNSUPPORTED;
    if (fast) {
        st = nh_pdq_input_fast(data, len, fd, name, opts, pix, img, &sw, &sh, err);
        if (st != NH_OK && st != NH_ERR_UNSUPPORTED)
            return st;
    }
    if (st == NH_ERR_UNSUPPORTED) {
        uint8_t *rgb = NULL;
        nh_decode_info info;
        st = nh_decode_full(data, len, fd, name, opts, &rgb, &info, err);
        if (st != NH_OK)
            return st;
        nh_pdq_input_from_full(rgb, info.width, info.height, pix, img);
        nh_decode_free(rgb);
        sw = info.src_width;
        sh = info.src_height;
    }
    if (src_width)
        *src_width = sw;
    if (src_height)
        *src_height = sh;
    return NH_OK;
}

nh_status nh_pdq_load_file(const char *path, unsigned flags, uint8_t *pix, nh_pdq_image *img,
                           int *src_width, int *src_height, nh_error *err)
{
    if (!path || !pix || !img)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, path,
                            "nh_pdq_load_file: bad arguments");
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    int fd = -1;
    nh_status st = nh_file_read_fd(path, 0, &buf, &cap, &len, &fd, err);
    if (st == NH_OK)
        st = nh_pdq_load_buffer(buf, len, fd, path, flags, NULL, pix, img, src_width, src_height,
                                err);
    if (fd >= 0)
        close(fd);
    free(buf);
    return st;
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
