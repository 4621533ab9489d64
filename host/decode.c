/*
 * nhash decode: libvips loaders -> RGB uint8 tensors. See nhash/decode.h.
 *
 * compat mode converts pixel formats in C, on the decoded samples, the way Pillow 9.4's
 * convert('RGB') does (gray replicated, alpha dropped, CMYK by Pillow's cmyk2rgb,
 * 16-bit RGB by its high byte, 16-bit gray clipped at 255 as Pillow's mode I does), so the
 * resize sees the bytes Pillow's resize sees.
 */
#include "nhash/decode.h"
#include "nhash/pool.h"

#include "decode_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <vips/vips.h>

static pthread_once_t init_once = PTHREAD_ONCE_INIT;

/* What this process did, for tests and benchmarks (nh_decode_counts). */
static unsigned long n_opens, n_full, n_shrink;

void nh_decode_counts(unsigned long *opens, unsigned long *full, unsigned long *shrink)
{
    if (opens)
        *opens = __atomic_load_n(&n_opens, __ATOMIC_RELAXED);
    if (full)
        *full = __atomic_load_n(&n_full, __ATOMIC_RELAXED);
    if (shrink)
        *shrink = __atomic_load_n(&n_shrink, __ATOMIC_RELAXED);
}
static int init_failed;

static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer user)
{
    (void)domain;
    (void)level;
    (void)msg;
    (void)user;
}

/*
 * libvips' loader blocking is process-wide. Untrusted loaders stay blocked unless asked,
 * except JPEG XL: nhash promises JXL, and libvips 8.14 marks jxlload untrusted only because
 * libjxl was young when it was added; the reference decoder is what every JXL user runs.
 */
static int untrusted_allowed = -1;
static pthread_mutex_t untrusted_mu = PTHREAD_MUTEX_INITIALIZER;

static void apply_untrusted(int allow)
{
    pthread_mutex_lock(&untrusted_mu);
    if (allow != untrusted_allowed) {
        vips_block_untrusted_set(allow ? FALSE : TRUE);
        if (!allow)
            vips_operation_block_set("VipsForeignLoadJxl", FALSE);
        untrusted_allowed = allow;
    }
    pthread_mutex_unlock(&untrusted_mu);
}

static void init_vips(void)
{
    if (VIPS_INIT("nhash")) {
        init_failed = 1;
        return;
    }
    vips_cache_set_max(0);
    vips_cache_set_max_mem(0);
    vips_cache_set_max_files(0);
    vips_concurrency_set(1);
    apply_untrusted(0);
    /* libvips would print warnings (e.g. "premature end of JPEG") to stderr itself; we
     * turn every failure into an error record instead. */
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO,
                      quiet_log, NULL);
}

nh_status nh_decode_init(const char *argv0, nh_error *err)
{
    (void)argv0;
    pthread_once(&init_once, init_vips);
    if (init_failed)
        return nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_VIPS, 0, NULL,
                            "libvips failed to start: %s", vips_error_buffer());
    return NH_OK;
}

void nh_decode_thread_done(void)
{
    vips_thread_shutdown();
}

void nh_decode_opts_default(nh_decode_opts *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->mode = NH_DECODE_COMPAT;
    opts->width = 360;
    opts->height = 360;
    opts->max_pixels = NH_DECODE_DEFAULT_MAX_PIXELS;
}

static unsigned long long max_pixels_of(const nh_decode_opts *opts)
{
    return opts->max_pixels ? opts->max_pixels : NH_DECODE_DEFAULT_MAX_PIXELS;
}

size_t nh_decode_out_bytes(const nh_decode_opts *opts)
{
    if (opts->mode == NH_DECODE_NATIVE)
        return (size_t)max_pixels_of(opts) * 3;
    return (size_t)opts->width * (size_t)opts->height * 3;
}

/* Take libvips' error text (a process-wide buffer: under many threads a message may carry
 * another file's text too, so our own checks come first wherever they can). */
static nh_status vips_fail(nh_error *err, nh_status st, const char *path, const char *what)
{
    char *msg = vips_error_buffer_copy();
    char *p = msg;
    size_t n = msg ? strlen(msg) : 0;
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    /* Keep the first line(s) compact. */
    for (size_t i = 0; i < n; i++)
        if (p[i] == '\n')
            p[i] = ';';
    nh_error_set(err, st, NH_FOREIGN_VIPS, 0, path, "%s%s%s", what, n ? ": " : "", n ? msg : "");
    g_free(msg);
    return st;
}

nh_status nh_file_open(const char *path, int *fd_out, size_t *size, nh_error *err)
{
    /* stat first: a device is never opened (opening one can block or act). */
    struct stat sb;
    if (stat(path, &sb) != 0)
        return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path,
                            errno == ENOENT   ? "no such file"
                            : errno == EACCES ? "permission denied"
                                              : "cannot stat file");
    if (S_ISDIR(sb.st_mode))
        return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, EISDIR, path, "is a directory");
    if (!S_ISREG(sb.st_mode))
        return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_NONE, 0, path,
                            "not a regular file (device, fifo or socket)");
    __atomic_add_fetch(&n_opens, 1, __ATOMIC_RELAXED);
    /* O_NONBLOCK: should the path have become a FIFO since, the open does not wait. */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path,
                            errno == ENOENT   ? "no such file"
                            : errno == EACCES ? "permission denied"
                                              : "cannot open file");
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_NONE, 0, path,
                            "not a regular file (device, fifo or socket)");
    }
    *fd_out = fd;
    *size = (size_t)sb.st_size;
    return NH_OK;
}

nh_status nh_file_read_fd(const char *path, size_t max_bytes, uint8_t **buf, size_t *cap,
                          size_t *len, int *fd_out, nh_error *err)
{
    int fd = -1;
    size_t size = 0;
    nh_status st = nh_file_open(path, &fd, &size, err);
    if (st != NH_OK)
        return st;
    if (!max_bytes)
        max_bytes = NH_DECODE_DEFAULT_MAX_FILE_BYTES;
    size_t have = 0;
    for (;;) {
        if (size > max_bytes) {
            st = nh_error_set(err, NH_ERR_TOO_LARGE, NH_FOREIGN_NONE, 0, path,
                              "file is %zu bytes, over the %zu-byte limit for images", size,
                              max_bytes);
            break;
        }
        /* One byte more than the size, so a file that grew is noticed. */
        if (*cap < size + 1) {
            uint8_t *nb = realloc(*buf, size + 1);
            if (!nb) {
                st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, path, "out of memory");
                break;
            }
            *buf = nb;
            *cap = size + 1;
        }
        ssize_t got = read(fd, *buf + have, *cap - have);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            st = nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path, "read error");
            break;
        }
        if (got == 0)
            break;
        have += (size_t)got;
        if (have == *cap)
            size = have + (have >> 1) + 4096; /* it grew: read on */
    }
    if (st == NH_OK) {
        *len = have;
        if (fd_out) {
            *fd_out = fd;
            return NH_OK;
        }
    }
    close(fd);
    return st;
}

nh_status nh_file_read(const char *path, size_t max_bytes, uint8_t **buf, size_t *cap,
                       size_t *len, nh_error *err)
{
    return nh_file_read_fd(path, max_bytes, buf, cap, len, NULL, err);
}

/* Whether a loader (a type name from vips_foreign_find_load*) is blocked right now. */
static int loader_blocked(const char *loader)
{
    GType type = g_type_from_name(loader);
    if (!type || !g_type_is_a(type, VIPS_TYPE_OPERATION))
        return 0;
    VipsOperationClass *oc = g_type_class_ref(type);
    int blocked = (oc->flags & VIPS_OPERATION_BLOCKED) != 0;
    g_type_class_unref(oc);
    return blocked;
}

/* Open lazily (header only) and apply the pixel limit. *//* Open lazily (header only) and apply the pixel limit. */
static nh_status open_checked(const char *path, const void *data, size_t len, int fd,
                              const nh_decode_opts *opts, VipsImage **out, nh_decode_info *info,
                              nh_error *err)
{
    VipsImage *img;
    /* Always from the bytes (nh_decode_file reads them): libvips never parses a path. A
     * memory source reaches every loader that reads a stream, the .v format's too. */
    VipsSource *source = vips_source_new_from_memory(data, len);
    if (!source)
        return vips_fail(err, NH_ERR_NOMEM, path, "cannot read image");
    const char *loader = vips_foreign_find_load_source(source);
    char fdname[32] = "";
    if (!loader && fd >= 0) {
        /* A format libvips reads from files alone (its own .v, FITS, MAT ...): the open file
         * by its /proc name, which holds no characters libvips would parse as options. */
        vips_error_clear();
        snprintf(fdname, sizeof fdname, "/proc/self/fd/%d", fd);
        loader = vips_foreign_find_load(fdname);
        if (!loader)
            fdname[0] = '\0';
    }
    if (!loader) {
        vips_error_clear();
        g_object_unref(source);
        return nh_error_set(err, NH_ERR_DECODE, NH_FOREIGN_VIPS, 0, path,
                            "not a known image format%s",
                            opts->allow_untrusted ? "" : " (or only an untrusted loader knows it; "
                                                         "see --allow-untrusted)");
    }
    /* A blocked loader is known from its class, before trying it: libvips' error text is
     * process-wide, so reading "operation is blocked" back from it could see another
     * thread's message (or none) and misname the failure. */
    if (loader_blocked(loader)) {
        g_object_unref(source);
        vips_error_clear();
        return nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_VIPS, 0, path,
                            "only an untrusted libvips loader (%s) reads this format; "
                            "--allow-untrusted enables it",
                            loader);
    }
    if (fdname[0])
        img = vips_image_new_from_file(fdname, "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                       VIPS_FAIL_ON_ERROR, NULL);
    else
        img = vips_image_new_from_source(source, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on",
                                         VIPS_FAIL_ON_ERROR, NULL);
    g_object_unref(source);
    if (!img) {
        char *m = vips_error_buffer_copy();
        int blocked = m && strstr(m, "operation is blocked");
        g_free(m);
        if (blocked) {
            vips_error_clear();
            return nh_error_set(err, NH_ERR_UNSUPPORTED, NH_FOREIGN_VIPS, 0, path,
                                "only an untrusted libvips loader (%s) reads this format; "
                                "--allow-untrusted enables it",
                                loader);
        }
        return vips_fail(err, NH_ERR_DECODE, path, "cannot read image header");
    }
    unsigned long long px = (unsigned long long)img->Xsize * (unsigned long long)img->Ysize;
    if (px > max_pixels_of(opts)) {
        nh_status st = nh_error_set(err, NH_ERR_TOO_LARGE, NH_FOREIGN_NONE, 0, path,
                                    "image is %dx%d = %.1f MP, over the %.1f MP limit "
                                    "(see --max-pixels)",
                                    img->Xsize, img->Ysize, (double)px / 1e6,
                                    (double)max_pixels_of(opts) / 1e6);
        g_object_unref(img);
        return st;
    }
    if (info) {
        memset(info, 0, sizeof *info);
        info->src_width = img->Xsize;
        info->src_height = img->Ysize;
        info->src_bands = img->Bands;
        info->src_bits = (int)vips_format_sizeof(img->BandFmt) * 8;
        const char *ld = NULL;
        if (vips_image_get_typeof(img, "vips-loader") &&
            vips_image_get_string(img, "vips-loader", &ld) == 0 && ld)
            snprintf(info->loader, sizeof info->loader, "%s", ld);
    }
    *out = img;
    return NH_OK;
}

static inline uint8_t muldiv255(int a, int b)
{
    int tmp = a * b + 128;
    return (uint8_t)(((tmp >> 8) + tmp) >> 8);
}

static inline uint8_t clip8i(int v)
{
    return v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v;
}

/*
 * Pillow-style convert('RGB') of decoded samples into dst (w*h*3). Returns NH_OK or
 * NH_ERR_UNSUPPORTED for formats handled by the generic path instead.
 */
static nh_status pillow_to_rgb(VipsImage *img, const void *mem, uint8_t *dst)
{
    size_t npx = (size_t)img->Xsize * img->Ysize;
    int b = img->Bands;
    int cmyk = img->Type == VIPS_INTERPRETATION_CMYK && b >= 4;
    if (img->BandFmt == VIPS_FORMAT_UCHAR) {
        const uint8_t *s = mem;
        for (size_t i = 0; i < npx; i++, s += b, dst += 3) {
            if (cmyk) {
                int nk = 255 - s[3];
                dst[0] = clip8i(nk - muldiv255(s[0], nk));
                dst[1] = clip8i(nk - muldiv255(s[1], nk));
                dst[2] = clip8i(nk - muldiv255(s[2], nk));
            } else if (b < 3) {
                dst[0] = dst[1] = dst[2] = s[0];
            } else {
                dst[0] = s[0];
                dst[1] = s[1];
                dst[2] = s[2];
            }
        }
        return NH_OK;
    }
    if (img->BandFmt == VIPS_FORMAT_USHORT && !cmyk) {
        const uint16_t *s = mem;
        for (size_t i = 0; i < npx; i++, s += b, dst += 3) {
            if (b < 3) {
                dst[0] = dst[1] = dst[2] = s[0] > 255 ? 255 : (uint8_t)s[0];
            } else {
                dst[0] = (uint8_t)(s[0] >> 8);
                dst[1] = (uint8_t)(s[1] >> 8);
                dst[2] = (uint8_t)(s[2] >> 8);
            }
        }
        return NH_OK;
    }
    return NH_ERR_UNSUPPORTED;
}

/* Any other format: colour-manage to sRGB, 8-bit, 3 bands (not Pillow-exact). */
static VipsImage *generic_srgb(VipsImage *in)
{
    VipsImage *a = NULL, *b = NULL, *c = NULL;
    if (vips_colourspace(in, &a, VIPS_INTERPRETATION_sRGB, NULL))
        return NULL;
    if (a->Bands > 3) {
        if (vips_extract_band(a, &b, 0, "n", 3, NULL)) {
            g_object_unref(a);
            return NULL;
        }
    } else {
        b = a;
        g_object_ref(b);
    }
    g_object_unref(a);
    if (b->Bands == 1) {
        VipsImage *t[3] = {b, b, b};
        if (vips_bandjoin(t, &c, 3, NULL)) {
            g_object_unref(b);
            return NULL;
        }
        g_object_unref(b);
        b = c;
        c = NULL;
    }
    if (vips_cast_uchar(b, &c, NULL)) {
        g_object_unref(b);
        return NULL;
    }
    g_object_unref(b);
    return c;
}

/* Decode in full to an RGB buffer of w*h*3 (returned-owned, g_free). */
static nh_status full_rgb(VipsImage *img, const char *path, uint8_t **out, nh_error *err)
{
    nh_status st = NH_OK;
    size_t sz = 0;
    VipsImage *gen = NULL;
    void *mem = vips_image_write_to_memory(img, &sz);
    if (!mem)
        return vips_fail(err, NH_ERR_DECODE, path, "cannot decode image");
    size_t npx = (size_t)img->Xsize * img->Ysize;
    uint8_t *rgb = g_try_malloc(npx * 3);
    if (!rgb) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, path, "out of memory");
        goto cleanup;
    }
    if (pillow_to_rgb(img, mem, rgb) != NH_OK) {
        /* Rare formats (float, signed, 32-bit): go through libvips' colour management. */
        VipsImage *mi = vips_image_new_from_memory(mem, sz, img->Xsize, img->Ysize, img->Bands,
                                                   img->BandFmt);
        if (mi)
            mi->Type = img->Type;
        gen = mi ? generic_srgb(mi) : NULL;
        if (mi)
            g_object_unref(mi);
        size_t gsz = 0;
        void *gm = gen ? vips_image_write_to_memory(gen, &gsz) : NULL;
        if (!gm || gsz != npx * 3) {
            g_free(gm);
            st = vips_fail(err, NH_ERR_DECODE, path, "cannot convert pixel format to RGB");
            goto cleanup;
        }
        memcpy(rgb, gm, npx * 3);
        g_free(gm);
    }
    *out = rgb;
    rgb = NULL;
cleanup:
    if (gen)
        g_object_unref(gen);
    g_free(rgb);
    g_free(mem);
    return st;
}

static void nearest_squash(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    /* PDQ reference: dst pixel (x, y) takes src (floor(x * sw / dw), floor(y * sh / dh)). */
    for (int y = 0; y < dh; y++) {
        int sy = (int)((long long)y * sh / dh);
        for (int x = 0; x < dw; x++) {
            int sx = (int)((long long)x * sw / dw);
            memcpy(dst + ((size_t)y * dw + x) * 3, src + ((size_t)sy * sw + sx) * 3, 3);
        }
    }
}

static nh_status decode_fast(const char *path, const void *data, size_t len, int fd,
                             const nh_decode_opts *opts, uint8_t *out, nh_decode_info *info,
                             nh_error *err)
{
    nh_status st = NH_OK;
    VipsImage *thumb = NULL, *rgb = NULL;
    __atomic_add_fetch(&n_shrink, 1, __ATOMIC_RELAXED);
    VipsSource *source = vips_source_new_from_memory(data, len);
    if (!source)
        return vips_fail(err, NH_ERR_NOMEM, path, "cannot read image");
    int r;
    if (fd >= 0 && !vips_foreign_find_load_source(source)) {
        char fdname[32];
        vips_error_clear();
        snprintf(fdname, sizeof fdname, "/proc/self/fd/%d", fd);
        r = vips_thumbnail(fdname, &thumb, opts->width, "height", opts->height, "size",
                           VIPS_SIZE_FORCE, "no_rotate", !opts->autorotate, "fail_on",
                           VIPS_FAIL_ON_ERROR, NULL);
    } else {
        r = vips_thumbnail_source(source, &thumb, opts->width, "height", opts->height, "size",
                                  VIPS_SIZE_FORCE, "no_rotate", !opts->autorotate,
                                  "option_string", "fail_on=error", NULL);
    }
    g_object_unref(source);
    if (r)
        return vips_fail(err, NH_ERR_DECODE, path, "cannot decode image");
    rgb = generic_srgb(thumb);
    if (!rgb) {
        st = vips_fail(err, NH_ERR_DECODE, path, "cannot convert to RGB");
        goto cleanup;
    }
    if (rgb->Xsize != opts->width || rgb->Ysize != opts->height) {
        /* vips_thumbnail rounds; a 1-pixel miss is squashed to the exact size. */
        VipsImage *t = NULL;
        if (vips_resize(rgb, &t, (double)opts->width / rgb->Xsize, "vscale",
                        (double)opts->height / rgb->Ysize, NULL)) {
            st = vips_fail(err, NH_ERR_DECODE, path, "cannot resize");
            goto cleanup;
        }
        g_object_unref(rgb);
        rgb = t;
    }
    size_t sz = 0;
    void *mem = vips_image_write_to_memory(rgb, &sz);
    if (!mem) {
        st = vips_fail(err, NH_ERR_DECODE, path, "cannot decode image");
        goto cleanup;
    }
    if (sz != (size_t)opts->width * opts->height * 3) {
        g_free(mem);
        st = nh_error_set(err, NH_ERR_DECODE, NH_FOREIGN_NONE, 0, path,
                          "thumbnail has an unexpected size %dx%d", rgb->Xsize, rgb->Ysize);
        goto cleanup;
    }
    memcpy(out, mem, sz);
    g_free(mem);
    if (info) {
        info->width = opts->width;
        info->height = opts->height;
    }
cleanup:
    if (rgb)
        g_object_unref(rgb);
    if (thumb)
        g_object_unref(thumb);
    return st;
}

/* Checks and header: everything before the pixels. */
static nh_status decode_begin(const char *path, const void *data, size_t len,
                              const nh_decode_opts *opts, nh_error *err)
{
    nh_status st = nh_decode_init(NULL, err);
    if (st != NH_OK)
        return st;
    if (!opts || (opts->mode != NH_DECODE_NATIVE && (opts->width <= 0 || opts->height <= 0)))
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, path, "bad decode options");
    apply_untrusted(opts->allow_untrusted != 0);
    if (len == 0)
        return nh_error_set(err, NH_ERR_DECODE, NH_FOREIGN_NONE, 0, path, "empty file");
    return nh_decode_guard(data, len, path, err);
}

static nh_status decode_full(const char *path, const void *data, size_t len, int fd,
                             const nh_decode_opts *opts, uint8_t **rgb, nh_decode_info *info,
                             nh_error *err)
{
    VipsImage *img = NULL;
    __atomic_add_fetch(&n_full, 1, __ATOMIC_RELAXED);
    nh_status st = open_checked(path, data, len, fd, opts, &img, info, err);
    if (st == NH_OK)
        st = full_rgb(img, path, rgb, err);
    if (st == NH_OK) {
        info->width = img->Xsize;
        info->height = img->Ysize;
    }
    if (img)
        g_object_unref(img);
    vips_error_clear();
    return st;
}

nh_status nh_decode_derive(const uint8_t *rgb, int sw, int sh, const nh_decode_opts *opts,
                           uint8_t *out, nh_decode_info *info)
{
    switch (opts->mode) {
    case NH_DECODE_COMPAT: {
        nh_status st = nh_resize_pillow_bicubic(rgb, sw, sh, out, opts->width, opts->height);
        if (st != NH_OK)
            return st;
        info->width = opts->width;
        info->height = opts->height;
        return NH_OK;
    }
    case NH_DECODE_NEAREST:
        if (sw > opts->width || sh > opts->height) {
            /* PDQ's reference: once either side is over, both become exactly the target. */
            nearest_squash(rgb, sw, sh, out, opts->width, opts->height);
            info->width = opts->width;
            info->height = opts->height;
            return NH_OK;
        }
        break;
    case NH_DECODE_NATIVE:
        break;
    case NH_DECODE_FAST:
    default:
        return NH_ERR_INVALID;
    }
    memcpy(out, rgb, (size_t)sw * sh * 3);
    info->width = sw;
    info->height = sh;
    return NH_OK;
}

nh_status nh_decode_full(const void *data, size_t len, int fd, const char *name,
                         const nh_decode_opts *opts, uint8_t **rgb, nh_decode_info *info,
                         nh_error *err)
{
    const char *path = name ? name : "<buffer>";
    nh_decode_info local;
    if (!info)
        info = &local;
    if (!rgb)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, path, "no output");
    nh_decode_opts o = *opts;
    o.mode = NH_DECODE_NATIVE;
    nh_status st = decode_begin(path, data ? data : "", len, &o, err);
    if (st != NH_OK)
        return st;
    return decode_full(path, data ? data : "", len, fd, &o, rgb, info, err);
}

void nh_decode_free(uint8_t *rgb)
{
    g_free(rgb);
}

static nh_status decode_any(const char *path, const void *data, size_t len, int fd,
                            const nh_decode_opts *opts, uint8_t *out, nh_decode_info *info,
                            nh_error *err)
{
    nh_decode_info local;
    if (!info)
        info = &local;
    nh_status st = decode_begin(path, data, len, opts, err);
    if (st != NH_OK)
        return st;
    if (opts->mode == NH_DECODE_FAST) {
        VipsImage *img = NULL;
        st = open_checked(path, data, len, fd, opts, &img, info, err);
        if (img)
            g_object_unref(img);
        if (st == NH_OK)
            st = decode_fast(path, data, len, fd, opts, out, info, err);
        vips_error_clear();
        return st;
    }
    uint8_t *rgb = NULL;
    st = decode_full(path, data, len, fd, opts, &rgb, info, err);
    if (st == NH_OK) {
        st = nh_decode_derive(rgb, info->src_width, info->src_height, opts, out, info);
        if (st != NH_OK)
            nh_error_set(err, st, NH_FOREIGN_NONE, 0, path, "resize failed");
    }
    g_free(rgb);
    return st;
}

nh_status nh_decode_file(const char *path, const nh_decode_opts *opts, uint8_t *out,
                         nh_decode_info *info, nh_error *err)
{
    if (!path)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, NULL, "no path");
    /* The bytes are read here and handed to libvips: a path is never parsed by libvips,
     * which would take "a.png[0]" as a.png with load options. */
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    int fd = -1;
    nh_status st = nh_file_read_fd(path, opts ? opts->max_file_bytes : 0, &buf, &cap, &len, &fd,
                                   err);
    if (st == NH_OK)
        st = decode_any(path, buf, len, fd, opts, out, info, err);
    if (fd >= 0)
        close(fd);
    free(buf);
    return st;
}

nh_status nh_decode_source(const void *data, size_t len, int fd, const char *name,
                           const nh_decode_opts *opts, uint8_t *out, nh_decode_info *info,
                           nh_error *err)
{
    return decode_any(name ? name : "<buffer>", data ? data : "", len, fd, opts, out, info, err);
}

nh_status nh_decode_buffer(const void *data, size_t len, const char *name,
                           const nh_decode_opts *opts, uint8_t *out, nh_decode_info *info,
                           nh_error *err)
{
    return decode_any(name ? name : "<buffer>", data ? data : "", len, -1, opts, out, info, err);
}

/* ---- worker pool: nh_pool (core) running one decode per item ---- */

struct nh_decode_pool {
    nh_decode_opts opts;
    nh_pool *pool;
    /* current batch */
    const char *const *paths;
    uint8_t *out;
    nh_decode_result *results;
};

static void decode_item(void *ctx, int w, size_t i)
{
    (void)w;
    nh_decode_pool *p = ctx;
    size_t slot = nh_decode_out_bytes(&p->opts);
    nh_decode_result *r = &p->results[i];
    nh_error_clear(&r->err);
    memset(&r->info, 0, sizeof r->info);
    r->status = nh_decode_file(p->paths[i], &p->opts, p->out + i * slot, &r->info, &r->err);
    /* libvips keeps per-thread buffers; drop them between images. */
    vips_thread_shutdown();
}

nh_status nh_decode_pool_create(const nh_decode_opts *opts, int nthreads,
                                nh_decode_pool **out, nh_error *err)
{
    nh_status st = nh_decode_init(NULL, err);
    if (st != NH_OK)
        return st;
    nh_decode_pool *p = calloc(1, sizeof *p);
    if (!p)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
    p->opts = *opts;
    apply_untrusted(opts->allow_untrusted != 0);
    st = nh_pool_create(nthreads, nh_decode_thread_done, &p->pool, err);
    if (st != NH_OK) {
        free(p);
        return st;
    }
    *out = p;
    return NH_OK;
}

void nh_decode_pool_destroy(nh_decode_pool *p)
{
    if (!p)
        return;
    nh_pool_destroy(p->pool);
    free(p);
}

int nh_decode_pool_threads(const nh_decode_pool *p)
{
    return nh_pool_threads(p->pool);
}

nh_status nh_decode_pool_run(nh_decode_pool *p, const char *const *paths, size_t n, uint8_t *out,
                             nh_decode_result *results)
{
    if (!p || (n && (!paths || !out || !results)))
        return NH_ERR_INVALID;
    if (n == 0)
        return NH_OK;
    p->paths = paths;
    p->out = out;
    p->results = results;
    nh_pool_run(p->pool, n, decode_item, p);
    return NH_OK;
}
