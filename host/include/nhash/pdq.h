/*
 * nhash pdq: Meta's PDQ 256-bit photo hash and its quality score, bit-exact with the C++
 * reference (facebook/ThreatExchange pdq/cpp), in plain C and as batched OpenCL kernels.
 *
 * The hashing core takes pixels, never files (pdq_file.c is the only decoder-aware part).
 *
 * Pipeline (the reference's float/double choices are kept exactly, see docs/pdq.md):
 *   1. when a side exceeds 512 the pixels are squashed to exactly 512x512 by nearest
 *      neighbour, source column floor(x*W/512), row floor(y*H/512) (the reference's I/O
 *      layer does this; NH_PDQ_FULL_RES skips it as pdqHash256FromFloatLuma would);
 *   2. float luma 0.299f*R + 0.587f*G + 0.114f*B, or the grey value itself for grey input;
 *   3. Jarosz tent filter: box along rows, along columns, rows, columns, window
 *      ceil(dim/128), float running sums;
 *   4. decimation to 64x64 at block centres (a 64x64 input is taken as is, unfiltered,
 *      for the plain hash only, as in the reference);
 *   5. quality: sum of quantised gradients of the 64x64 image / 90, at most 100;
 *   6. 16x16 DCT of frequencies 1..16 (float accumulations in k order);
 *   7. bit (i*16+j) = coefficient[i][j] > lower median (Torben) of the 256 coefficients;
 *   8. the 8 dihedral variants derived from the coefficients (sign flips / transposition).
 *
 * Hash layout: 32 bytes, canonical big-endian; the hex of the bytes is exactly Meta's hex
 * (DCT row 15 first). Bit k = i*16+j of the reference lives in byte 31 - k/8, bit k%8.
 *
 * Matching conventions (pipeline --algo pdq): distance <= NH_PDQ_MATCH_DISTANCE (31) is a
 * match; hashes of quality < NH_PDQ_QUALITY_MIN (50) are unreliable; dihedral matching
 * compares the 8 variants of one side with the plain hash of the other.
 */
#ifndef NHASH_PDQ_H
#define NHASH_PDQ_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/core.h"

#ifdef __cplusplus
extern "C" {
#endif

#define NH_PDQ_HASH_BYTES 32
#define NH_PDQ_HEX_LEN 64
#define NH_PDQ_REF_DIM 512       /* the reference squashes to this when a side exceeds it */
#define NH_PDQ_MIN_DIM 5         /* smaller images hash to zeros with quality 0 */
#define NH_PDQ_QUALITY_MIN 50    /* below this a hash is unreliable */
#define NH_PDQ_MATCH_DISTANCE 31 /* default match threshold (Hamming distance, inclusive) */
#define NH_PDQ_NUM_DIHEDRAL 8

/* The 8 dihedral variants, in the order of the reference's --pdqdih-across output. */
typedef enum nh_pdq_dihedral {
    NH_PDQ_ORIGINAL = 0,
    NH_PDQ_ROTATE_90 = 1,
    NH_PDQ_ROTATE_180 = 2,
    NH_PDQ_ROTATE_270 = 3,
    NH_PDQ_FLIP_X = 4,
    NH_PDQ_FLIP_Y = 5,
    NH_PDQ_FLIP_PLUS_1 = 6,
    NH_PDQ_FLIP_MINUS_1 = 7,
} nh_pdq_dihedral;

/* Flags for nh_pdq_hash, nh_pdq_cl_hash and nh_pdq_hash_file. */
/* nh_pdq_hash_file only: shrink-on-load instead of the reference's input path. */
#define NH_PDQ_INPUT_FAST 0x1u
/* All 8 variants (8 x 32 bytes out), as pdqDihedralHash256esFromFloatLuma. */
#define NH_PDQ_DIHEDRAL 0x2u
/* No 512x512 squash: hash at the given size. */
#define NH_PDQ_FULL_RES 0x4u
/* nh_pdq_hash_file only: the shrink-on-load decode for every file with a side over 512,
 * even where it is slower (for measuring the fast path's distance, docs/pdq.md). */
#define NH_PDQ_INPUT_FAST_ALWAYS 0x8u

/*
 * A borrowed pixel buffer. channels: bytes per pixel, 1 (grey), 2 (grey+alpha), 3 (RGB) or
 * 4 (RGBA; alpha ignored, never composited). gray != 0 with 3 or 4 channels takes the
 * first byte of each pixel as the grey value, which is what the reference does for files
 * its decoder (ImageMagick's PNM output) turns into PGM because all pixels have R=G=B.
 * stride: bytes from one row to the next, 0 for width * channels.
 */
typedef struct nh_pdq_image {
    const uint8_t *pixels; /* borrowed: height rows of stride bytes */
    int width, height;
    int channels;
    int gray;
    size_t stride;
} nh_pdq_image;

/* Fill img for an interleaved RGB uint8 buffer without padding. */
void nh_pdq_image_rgb(nh_pdq_image *img, const uint8_t *rgb, int width, int height);

/* 1 when every pixel of a 3- or 4-channel image has R == G == B (the reference would then
 * see a grey image), 0 otherwise. Grey images give 1. */
int nh_pdq_image_is_gray(const nh_pdq_image *img);

/* Caller-owned working memory, sized once and reused: no allocation per image. */
typedef struct nh_pdq_scratch nh_pdq_scratch;

/*
 * Create scratch for images that reach the filter at up to max_width x max_height pixels
 * (after the 512x512 squash; pass 0, 0 for NH_PDQ_REF_DIM, enough unless NH_PDQ_FULL_RES
 * is used on larger images). *out is returned-owned (nh_pdq_scratch_destroy).
 */
nh_status nh_pdq_scratch_create(int max_width, int max_height, nh_pdq_scratch **out, nh_error *err);
void nh_pdq_scratch_destroy(nh_pdq_scratch *s);

/*
 * Hash one image. hashes: out, 32 bytes, or 8 x 32 bytes in nh_pdq_dihedral order with
 * NH_PDQ_DIHEDRAL. quality: out, 0..100. Images with a side under NH_PDQ_MIN_DIM give zero
 * hashes and quality 0 (not an error, as in the reference). One scratch serves one thread
 * at a time. Errors: NH_ERR_INVALID (bad arguments), NH_ERR_TOO_LARGE (bigger than the
 * scratch). Outputs are written only on success.
 */
nh_status nh_pdq_hash(nh_pdq_scratch *s, const nh_pdq_image *img, unsigned flags, uint8_t *hashes,
                      int *quality, nh_error *err);

/* Size an image reaches the filter at: itself, or 512x512 when a side exceeds 512 and
 * flags lacks NH_PDQ_FULL_RES. */
void nh_pdq_work_size(const nh_pdq_image *img, unsigned flags, int *width, int *height);

/* ---- stages, exposed for tests and for checking the kernels ---- */

/* Luma of img at its work size (squash applied unless NH_PDQ_FULL_RES).
 * luma: out, work height x work width floats, row-major. */
void nh_pdq_luma(const nh_pdq_image *img, unsigned flags, float *luma);

/* Tent filter in place (4 box passes) and 64x64 decimation. buf1: in/out h x w luma,
 * buf2: scratch of the same size, out64: out 64 x 64 floats. */
void nh_pdq_blur_decimate(float *buf1, float *buf2, int width, int height, float *out64);

/* Quality 0..100 of a 64x64 downsample. */
int nh_pdq_quality(const float *a64);

/* The reference's 16 x 64 DCT matrix as floats (borrowed, static). */
const float *nh_pdq_dct_matrix(void);

/* 16x16 DCT of frequencies 1..16 of a 64x64 image: t16x64 scratch (1024 floats), out16
 * 256 floats, row-major, row = vertical frequency - 1. */
void nh_pdq_dct(const float *a64, float *t16x64, float *out16);

/* Coefficients of a dihedral variant from those of the original (out != in). */
void nh_pdq_dct_dihedral(const float *in16, nh_pdq_dihedral which, float *out16);

/* Torben's lower median of n floats (value of rank (n+1)/2, 1-based). n >= 1. */
float nh_pdq_median(const float *v, int n);

/* Bits of 16x16 coefficients: 32 bytes out, canonical order. */
void nh_pdq_bits(const float *c16, uint8_t *hash);

/* ---- matching helpers ---- */

/* Hamming distance of two 32-byte hashes (0..256). */
unsigned nh_pdq_distance(const uint8_t *a, const uint8_t *b);

/* 1 when quality >= NH_PDQ_QUALITY_MIN, else 0 (hash unreliable). */
int nh_pdq_reliable(int quality);

/* 1 when distance(a, b) <= max_distance. */
int nh_pdq_match(const uint8_t *a, const uint8_t *b, unsigned max_distance);

/*
 * Dihedral match: the smallest distance between any of the 8 variants of one image
 * (variants: 8 x 32 bytes from NH_PDQ_DIHEDRAL) and the plain hash of another. Returns 1
 * when that distance is <= max_distance. best_distance and best_variant (either may be
 * NULL) receive the minimum and the variant reaching it (the lowest index on ties).
 */
int nh_pdq_match_dihedral(const uint8_t *variants, const uint8_t *other, unsigned max_distance,
                          unsigned *best_distance, nh_pdq_dihedral *best_variant);

/* Name of a variant ("orig", "rot90", "rot180", "rot270", "flipx", "flipy", "flipplus1",
 * "flipminus1", the reference's column names), or "?" */
const char *nh_pdq_dihedral_name(nh_pdq_dihedral which);

/* Lowercase hex (Meta's form) of a hash into out[65]. */
void nh_pdq_hex(const uint8_t *hash, char *out);

/* Parse 64 hex digits into 32 bytes; NH_ERR_INVALID on anything else. */
nh_status nh_pdq_hex_parse(const char *text, uint8_t *hash);

/* ---- files (pdq_file.c, the module's only decoder-aware file; links nh_decode) ---- */

/* Bytes of the caller-owned pixel buffer nh_pdq_hash_file needs. */
#define NH_PDQ_FILE_PIXEL_BYTES ((size_t)NH_PDQ_REF_DIM * NH_PDQ_REF_DIM * 3)

/*
 * Decode a file and hash it.
 *   Reference path (default): full decode, alpha dropped, no EXIF rotation, nearest-
 *   neighbour squash to exactly 512x512 when a side exceeds 512 (nh_decode NEAREST mode,
 *   completed here), grey luma for grey files and for colour files whose pixels are all
 *   grey (the reference's ImageMagick-to-PNM decode makes those PGM). Bit-exact with the
 *   reference wherever libvips decodes the same pixels as ImageMagick.
 *   NH_PDQ_INPUT_FAST: for JPEGs whose shorter side is >= 1024 (where libvips can shrink
 *   while decoding), nh_decode FAST mode straight to 512x512 (no EXIF rotation); every other
 *   file takes the reference path, which is faster for them. Not bit-exact (docs/pdq.md).
 * flags: NH_PDQ_INPUT_FAST, NH_PDQ_DIHEDRAL. pixels: caller-owned scratch of
 * NH_PDQ_FILE_PIXEL_BYTES (decoded image, unspecified afterwards). s: scratch (one per
 * thread). hashes, quality as in nh_pdq_hash. src_width, src_height (may be NULL): size
 * stored in the file. Errors: those of nh_decode_file (err names the file).
 */
nh_status nh_pdq_hash_file(const char *path, unsigned flags, uint8_t *pixels, nh_pdq_scratch *s,
                           uint8_t *hashes, int *quality, int *src_width, int *src_height,
                           nh_error *err);

/*
 * The decoding half of nh_pdq_hash_file, for batching on OpenCL: decode path into pixels
 * (NH_PDQ_FILE_PIXEL_BYTES, caller-owned) by the path flags choose and describe the result
 * in img (borrowing pixels, with gray set as the reference would see it).
 */
nh_status nh_pdq_load_file(const char *path, unsigned flags, uint8_t *pixels, nh_pdq_image *img,
                           int *src_width, int *src_height, nh_error *err);

/* ---- inputs from bytes already read (the pipeline's one read and one decode) ---- */

struct nh_decode_opts;

/* 1 when data is a JPEG whose shorter side is >= 1024, where --pdq-fast's shrink-on-load
 * pays (read from the header bytes only). */
int nh_pdq_fast_pays(const void *data, size_t len);

/* The reference input from a full decode (rgb: sw x sh x 3, borrowed): nearest-neighbour
 * squash to exactly 512x512 when a side exceeds 512, else the image as it is, into pix
 * (NH_PDQ_FILE_PIXEL_BYTES, caller-owned); img borrows pix, with gray set as the reference's
 * decoder would see it. */
void nh_pdq_input_from_full(const uint8_t *rgb, int sw, int sh, uint8_t *pix, nh_pdq_image *img);

/* The shrink-on-load input (FAST decode of data to 512x512 under opts' limits). Returns
 * fd: the open file or -1 (nh_decode_full). NH_ERR_UNSUPPORTED when the image turned out to fit in 512x512 (the caller takes the
 * reference input: the reference leaves such images alone). */
nh_status nh_pdq_input_fast(const void *data, size_t len, int fd, const char *name,
                            const struct nh_decode_opts *opts, uint8_t *pix, nh_pdq_image *img,
                            int *src_width, int *src_height, nh_error *err);

/* nh_pdq_load_file's work on bytes already read (name for errors), under opts' limits and
 * loader policy (NULL: the defaults). */
nh_status nh_pdq_load_buffer(const void *data, size_t len, int fd, const char *name, unsigned flags,
                             const struct nh_decode_opts *opts, uint8_t *pix, nh_pdq_image *img,
                             int *src_width, int *src_height, nh_error *err);

/* Shorthands for nh_pdq_scratch_create(0, 0, ...) / nh_pdq_scratch_destroy: a 512x512
 * scratch, NULL when out of memory. */
nh_pdq_scratch *nh_pdq_scratch_new(void);
void nh_pdq_scratch_free(nh_pdq_scratch *s);

/* ---- OpenCL: N images per launch ---- */

struct nh_cl;
typedef struct nh_pdq_cl nh_pdq_cl;

/*
 * Build the kernels and size device buffers for batches of max_batch images of at most
 * max_width x max_height work pixels (0, 0 for 512 x 512). cl is borrowed and must outlive
 * the result. Division is built correctly rounded (-cl-fp32-correctly-rounded-divide-sqrt)
 * when the device supports it, else done in double when cl_khr_fp64 is there; a device
 * with neither still runs but is not guaranteed bit-exact (nh_pdq_cl_exact says so).
 * *out is returned-owned (nh_pdq_cl_destroy).
 */
nh_status nh_pdq_cl_create(struct nh_cl *cl, size_t max_batch, int max_width, int max_height,
                           nh_pdq_cl **out, nh_error *err);
void nh_pdq_cl_destroy(nh_pdq_cl *p);

/* 1 when divisions on this device are correctly rounded (bit-exact with the C path). */
int nh_pdq_cl_exact(const nh_pdq_cl *p);

/*
 * Hash n images (any n: they go in launches of up to max_batch). imgs borrowed for the
 * call. hashes: out, n x 32 bytes, or n x 8 x 32 with NH_PDQ_DIHEDRAL. quality: out, n ints.
 * Same results as nh_pdq_hash image by image. Errors: NH_ERR_TOO_LARGE when an image's
 * work size exceeds the create-time maximum, NH_ERR_CL on an OpenCL failure.
 */
nh_status nh_pdq_cl_hash(nh_pdq_cl *p, const nh_pdq_image *imgs, size_t n, unsigned flags,
                         uint8_t *hashes, int *quality, nh_error *err);

#ifdef __cplusplus
}
#endif
#endif
