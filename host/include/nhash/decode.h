/*
 * nhash decode: image files -> RGB uint8 tensors, through libvips 8.14. libvips objects
 * never leave this module; callers get pixels.
 *
 * Modes
 *   NH_DECODE_COMPAT  full decode, alpha dropped without compositing, EXIF orientation not
 *                     applied, pixel formats converted the way Pillow's convert('RGB') does,
 *                     then Pillow 9.4's BICUBIC resize reproduced exactly (nnhash.py).
 *   NH_DECODE_FAST    shrink-on-load through vips_thumbnail straight to the target size
 *                     (aspect not kept, as in compat); EXIF orientation by opts.autorotate.
 *   NH_DECODE_NEAREST full decode as in compat, then, when either side exceeds the target,
 *                     a nearest-neighbour squash of both sides to exactly the target size
 *                     (PDQ's reference input path); the output keeps the source size when
 *                     it already fits.
 *   NH_DECODE_NATIVE  full decode as in compat, no resize at all (the output may be large:
 *                     max_pixels bounds it).
 *
 * Safety: untrusted libvips loaders (those built on ImageMagick, poppler, ...) are blocked
 * unless opts.allow_untrusted; images with more than opts.max_pixels pixels are refused
 * from their header, before any pixel is decoded; truncated or corrupt files are errors
 * (libvips fail_on=error), never silently grey-filled; animated and multi-page files give
 * their first frame.
 *
 * Threads: nh_decode_pool runs one image per worker thread with libvips concurrency 1 and
 * the operation cache off. Each result carries its own error record.
 */
#ifndef NHASH_DECODE_H
#define NHASH_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nh_decode_mode {
    NH_DECODE_COMPAT = 0,
    NH_DECODE_FAST = 1,
    NH_DECODE_NEAREST = 2,
    NH_DECODE_NATIVE = 3,
} nh_decode_mode;

#define NH_DECODE_DEFAULT_MAX_PIXELS 100000000ULL
#define NH_DECODE_DEFAULT_MAX_FILE_BYTES ((size_t)1 << 30)

typedef struct nh_decode_opts {
    nh_decode_mode mode;
    int width, height;          /* target size; for NEAREST the size not to exceed */
    int autorotate;             /* FAST only: apply EXIF orientation */
    int allow_untrusted;        /* allow libvips loaders marked untrusted */
    unsigned long long max_pixels; /* refuse larger images; 0 = NH_DECODE_DEFAULT_MAX_PIXELS */
    size_t max_file_bytes;      /* refuse larger files; 0 = NH_DECODE_DEFAULT_MAX_FILE_BYTES */
} nh_decode_opts;

/* Defaults: COMPAT, 360x360, no autorotate, untrusted blocked, 100 MP. */
void nh_decode_opts_default(nh_decode_opts *opts);

/* What a decode saw. */
typedef struct nh_decode_info {
    int src_width, src_height;  /* as stored in the file (before any rotation) */
    int src_bands;              /* bands in the file, alpha included */
    int src_bits;               /* bits per sample in the file (8, 16, 32) */
    int width, height;          /* size of the output tensor */
    char loader[48];            /* libvips loader nickname, e.g. "jpegload" */
} nh_decode_info;

/*
 * Start libvips for nhash: vips_init, operation cache off, untrusted loaders blocked.
 * Idempotent and thread-safe; argv0 may be NULL. Every other call here calls it.
 */
nh_status nh_decode_init(const char *argv0, nh_error *err);

/*
 * Open a regular file for reading. Anything else (folder, FIFO, device, socket) is refused
 * from its stat, without opening it, so nothing can block. *fd_out (returned-owned, close())
 * and *size (bytes at open) are written on success; err names the file and the reason
 * ("no such file", "permission denied", "is a directory", "not a regular file ...").
 */
nh_status nh_file_open(const char *path, int *fd_out, size_t *size, nh_error *err);

/*
 * Read a whole regular file into *buf (caller-owned, grown with realloc to *cap and kept for
 * the next call), *len bytes. NH_ERR_TOO_LARGE over max_bytes (0 = the default).
 */
nh_status nh_file_read(const char *path, size_t max_bytes, uint8_t **buf, size_t *cap,
                       size_t *len, nh_error *err);
/* Same, leaving the file open: *fd_out (returned-owned, close()) on success. */
nh_status nh_file_read_fd(const char *path, size_t max_bytes, uint8_t **buf, size_t *cap,
                          size_t *len, int *fd_out, nh_error *err);

/* Files this process opened for reading (nh_file_open), full decodes and shrink-on-load
 * decodes attempted, since it started (any may be NULL). For tests and benchmarks: the
 * pipeline opens and decodes each file once. */
void nh_decode_counts(unsigned long *opens, unsigned long *full, unsigned long *shrink);

/* A thread that decoded is about to end: drop libvips' per-thread buffers. */
void nh_decode_thread_done(void);

/* Upper bound of output bytes for opts (width * height * 3; NATIVE: max_pixels * 3). */
size_t nh_decode_out_bytes(const nh_decode_opts *opts);

/*
 * Decode one file. out: caller-owned, at least nh_decode_out_bytes(opts) bytes; receives
 * info->height x info->width x 3 bytes, interleaved RGB, rows top to bottom. info may be
 * NULL. On failure err names the file and the reason; out is unspecified.
 */
nh_status nh_decode_file(const char *path, const nh_decode_opts *opts, uint8_t *out,
                         nh_decode_info *info, nh_error *err);

/* Same from the file's bytes already read (borrowed for the call); fd as in
 * nh_decode_full; name is used in errors. */
nh_status nh_decode_source(const void *data, size_t len, int fd, const char *name,
                           const nh_decode_opts *opts, uint8_t *out, nh_decode_info *info,
                           nh_error *err);
/* nh_decode_source without a file (fd -1): formats libvips reads from files alone fail. */
nh_status nh_decode_buffer(const void *data, size_t len, const char *name,
                           const nh_decode_opts *opts, uint8_t *out, nh_decode_info *info,
                           nh_error *err);

/*
 * The one full decode behind COMPAT, NEAREST and NATIVE: the file's bytes (borrowed for the
 * call; name is used in errors) to RGB at the stored size, pixel formats converted as in
 * COMPAT. opts: size limits and loader policy (mode and size are ignored). *rgb is
 * returned-owned (nh_decode_free), info->src_* and info->width/height its size. fd: the
 * open file the bytes were read from, or -1; only formats that libvips reads from files
 * alone (its .v, FITS, MAT ...) are loaded through it, by its /proc/self/fd name. The
 * pipeline decodes each file once with this and derives every hasher's input from it.
 */
nh_status nh_decode_full(const void *data, size_t len, int fd, const char *name,
                         const nh_decode_opts *opts, uint8_t **rgb, nh_decode_info *info,
                         nh_error *err);
void nh_decode_free(uint8_t *rgb);

/*
 * A mode's output from a full decode (sw x sh x 3, borrowed): COMPAT resizes as Pillow
 * does, NEAREST squashes as PDQ's reference does, NATIVE copies. out as in nh_decode_file;
 * info->width/height receive its size. Byte for byte what nh_decode_file gives for that
 * mode. NH_ERR_INVALID for FAST (a decode of its own) or a bad size.
 */
nh_status nh_decode_derive(const uint8_t *rgb, int sw, int sh, const nh_decode_opts *opts,
                           uint8_t *out, nh_decode_info *info);

/*
 * Pillow 9.4 ImagingResample with BICUBIC on an interleaved RGB uint8 image, bit-exact:
 * horizontal pass first into an 8-bit intermediate, 22-bit fixed-point coefficients.
 * src: sh x sw x 3 (borrowed), dst: dh x dw x 3 (caller-owned). Equal sizes copy.
 */
nh_status nh_resize_pillow_bicubic(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw,
                                   int dh);

/* Result of one file in a pool batch. */
typedef struct nh_decode_result {
    nh_status status;
    nh_decode_info info;
    nh_error err;
} nh_decode_result;

typedef struct nh_decode_pool nh_decode_pool;

/* Create a pool of nthreads workers (0 = number of online CPUs). */
nh_status nh_decode_pool_create(const nh_decode_opts *opts, int nthreads,
                                nh_decode_pool **out, nh_error *err);
void nh_decode_pool_destroy(nh_decode_pool *pool);
int nh_decode_pool_threads(const nh_decode_pool *pool);

/*
 * Decode n files in parallel and return when all are done. paths borrowed for the call.
 * out: n slots of nh_decode_out_bytes(opts) bytes each, slot i for paths[i].
 * results[i] tells how file i went; a failed file does not stop the others. The return
 * value is NH_OK unless the batch itself could not run.
 */
nh_status nh_decode_pool_run(nh_decode_pool *pool, const char *const *paths, size_t n,
                             uint8_t *out, nh_decode_result *results);

#ifdef __cplusplus
}
#endif
#endif
