/*
 * Sanity of container structures before libvips sees the bytes. The whole file is in memory,
 * so no chunk or box can be longer than what is left of it; a length far past the end is
 * damage or an attack, and some decoders allocate what a chunk declares before reading it
 * (libpng: a 104-byte PNG whose zTXt chunk declares 2 GB cost 2.2 GB per decode). Such files
 * are refused here, naming the chunk and the sizes, so a decode never allocates more than the
 * file's structure can justify. Formats checked: PNG (every chunk), WebP (the RIFF size and
 * every chunk), ISO base media (HEIF, AVIF, JPEG XL containers: top-level boxes).
 */
#include <stdio.h>
#include <string.h>

#include "decode_guard.h"

/* A chunk may run past the end by this much and be left to the decoder (a file cut short
 * is reported there, as truncated, with what its header says); beyond it the declared length
 * is refused here, before anything allocates it. */
#define SLACK ((size_t)1 << 20)

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/* The 4-character type as printable text. */
static void fourcc(const uint8_t *p, char out[5])
{
    for (int i = 0; i < 4; i++)
        out[i] = p[i] >= 0x20 && p[i] < 0x7f ? (char)p[i] : '?';
    out[4] = '\0';
}

static nh_status too_long(nh_error *err, const char *path, const char *fmt, const uint8_t *type,
                          unsigned long long declared, size_t left)
{
    char t[5];
    fourcc(type, t);
    return nh_error_set(err, NH_ERR_DECODE, NH_FOREIGN_NONE, 0, path,
                        "damaged %s: chunk '%s' declares %llu bytes, the file has %zu left", fmt,
                        t, declared, left);
}

static nh_status check_png(const uint8_t *d, size_t len, const char *path, nh_error *err)
{
    size_t pos = 8;
    while (len - pos >= 8) {
        uint32_t n = be32(d + pos);
        const uint8_t *type = d + pos + 4;
        size_t left = len - pos - 8;
        /* the data, then its 4-byte CRC */
        if ((size_t)n > left) {
            if ((size_t)n - left > SLACK)
                return too_long(err, path, "PNG", type, n, left);
            return NH_OK; /* cut short: libpng says so */
        }
        if (left - n < 4)
            return NH_OK; /* the CRC is cut: libpng says so */
        if (!memcmp(type, "IEND", 4))
            return NH_OK;
        pos += 12 + (size_t)n;
    }
    return NH_OK;
}

static nh_status check_webp(const uint8_t *d, size_t len, const char *path, nh_error *err)
{
    uint32_t riff = le32(d + 4);
    if ((size_t)riff > len - 8 && (size_t)riff - (len - 8) > SLACK)
        return too_long(err, path, "WebP", d, riff, len - 8);
    if ((size_t)riff > len - 8)
        riff = (uint32_t)(len - 8);
    size_t end = 8 + (size_t)riff, pos = 12;
    while (pos < end && end - pos >= 8) {
        uint32_t n = le32(d + pos + 4);
        size_t left = end - pos - 8;
        if ((size_t)n > left)
            return (size_t)n - left > SLACK ? too_long(err, path, "WebP", d + pos, n, left)
                                            : NH_OK;
        pos += 8 + (size_t)n + (n & 1);
    }
    return NH_OK;
}

static nh_status check_bmff(const uint8_t *d, size_t len, const char *path, nh_error *err)
{
    size_t pos = 0;
    while (len - pos >= 8) {
        unsigned long long n = be32(d + pos);
        size_t head = 8;
        if (n == 1) {
            if (len - pos < 16)
                return NH_OK;
            n = (unsigned long long)be32(d + pos + 8) << 32 | be32(d + pos + 12);
            head = 16;
        } else if (n == 0) {
            return NH_OK; /* to the end of the file */
        }
        if (n < head)
            return NH_OK; /* malformed: the decoder says so */
        if (n > len - pos)
            return n - (len - pos) > SLACK
                       ? too_long(err, path, "ISO media file", d + pos + 4, n, len - pos)
                       : NH_OK;
        pos += (size_t)n;
    }
    return NH_OK;
}

nh_status nh_decode_guard(const void *data, size_t len, const char *path, nh_error *err)
{
    const uint8_t *d = data;
    if (len >= 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8))
        return check_png(d, len, path, err);
    if (len >= 12 && !memcmp(d, "RIFF", 4) && !memcmp(d + 8, "WEBP", 4))
        return check_webp(d, len, path, err);
    if (len >= 12 && !memcmp(d + 4, "ftyp", 4))
        return check_bmff(d, len, path, err);
    return NH_OK;
}
