/* nhash core: errors, codecs, Hamming distance. See nhash/core.h. */
#include "nhash/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void nh_error_clear(nh_error *err)
{
    if (!err)
        return;
    err->status = NH_OK;
    err->foreign_kind = NH_FOREIGN_NONE;
    err->foreign = 0;
    err->path[0] = '\0';
    err->msg[0] = '\0';
}

nh_status nh_error_set(nh_error *err, nh_status status, nh_foreign kind, long foreign,
                       const char *path, const char *fmt, ...)
{
    if (!err)
        return status;
    err->status = status;
    err->foreign_kind = kind;
    err->foreign = foreign;
    snprintf(err->path, sizeof err->path, "%s", path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    /* Foreign libraries end their messages with newlines; one-line records read better. */
    size_t n = strlen(err->msg);
    while (n > 0 && (err->msg[n - 1] == '\n' || err->msg[n - 1] == '\r'))
        err->msg[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (err->msg[i] == '\n' && status != NH_ERR_CL_BUILD)
            err->msg[i] = ' ';
    return status;
}

const char *nh_status_name(nh_status status)
{
    switch (status) {
    case NH_OK: return "ok";
    case NH_ERR_INVALID: return "invalid";
    case NH_ERR_NOMEM: return "nomem";
    case NH_ERR_IO: return "io";
    case NH_ERR_DECODE: return "decode";
    case NH_ERR_TOO_LARGE: return "too_large";
    case NH_ERR_CL: return "opencl";
    case NH_ERR_CL_BUILD: return "opencl_build";
    case NH_ERR_NOT_FOUND: return "not_found";
    case NH_ERR_FORMAT: return "format";
    case NH_ERR_DB: return "db";
    case NH_ERR_UNSUPPORTED: return "unsupported";
    case NH_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown";
}

const char *nh_cl_error_name(long code)
{
    switch (code) {
    case 0: return "CL_SUCCESS";
    case -1: return "CL_DEVICE_NOT_FOUND";
    case -2: return "CL_DEVICE_NOT_AVAILABLE";
    case -3: return "CL_COMPILER_NOT_AVAILABLE";
    case -4: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
    case -5: return "CL_OUT_OF_RESOURCES";
    case -6: return "CL_OUT_OF_HOST_MEMORY";
    case -7: return "CL_PROFILING_INFO_NOT_AVAILABLE";
    case -8: return "CL_MEM_COPY_OVERLAP";
    case -11: return "CL_BUILD_PROGRAM_FAILURE";
    case -12: return "CL_MAP_FAILURE";
    case -30: return "CL_INVALID_VALUE";
    case -31: return "CL_INVALID_DEVICE_TYPE";
    case -32: return "CL_INVALID_PLATFORM";
    case -33: return "CL_INVALID_DEVICE";
    case -34: return "CL_INVALID_CONTEXT";
    case -36: return "CL_INVALID_COMMAND_QUEUE";
    case -38: return "CL_INVALID_MEM_OBJECT";
    case -44: return "CL_INVALID_PROGRAM";
    case -45: return "CL_INVALID_PROGRAM_EXECUTABLE";
    case -46: return "CL_INVALID_KERNEL_NAME";
    case -48: return "CL_INVALID_KERNEL";
    case -49: return "CL_INVALID_ARG_INDEX";
    case -50: return "CL_INVALID_ARG_VALUE";
    case -51: return "CL_INVALID_ARG_SIZE";
    case -52: return "CL_INVALID_KERNEL_ARGS";
    case -53: return "CL_INVALID_WORK_DIMENSION";
    case -54: return "CL_INVALID_WORK_GROUP_SIZE";
    case -55: return "CL_INVALID_WORK_ITEM_SIZE";
    case -56: return "CL_INVALID_GLOBAL_OFFSET";
    case -61: return "CL_INVALID_BUFFER_SIZE";
    case -63: return "CL_INVALID_GLOBAL_WORK_SIZE";
    case -1001: return "CL_PLATFORM_NOT_FOUND_KHR";
    }
    return "CL_UNKNOWN_ERROR";
}

char *nh_error_format(const nh_error *err, char *buf, size_t n)
{
    if (!buf || n == 0)
        return buf;
    if (!err || err->status == NH_OK) {
        snprintf(buf, n, "ok");
        return buf;
    }
    char foreign[96] = "";
    switch (err->foreign_kind) {
    case NH_FOREIGN_ERRNO:
        snprintf(foreign, sizeof foreign, " (errno %ld: %s)", err->foreign, strerror((int)err->foreign));
        break;
    case NH_FOREIGN_CL:
        snprintf(foreign, sizeof foreign, " (%s, %ld)", nh_cl_error_name(err->foreign), err->foreign);
        break;
    case NH_FOREIGN_MDB:
        snprintf(foreign, sizeof foreign, " (lmdb rc %ld)", err->foreign);
        break;
    case NH_FOREIGN_VIPS:
    case NH_FOREIGN_NONE:
        break;
    }
    if (err->path[0])
        snprintf(buf, n, "%s: %s%s", err->path, err->msg, foreign);
    else
        snprintf(buf, n, "%s%s", err->msg, foreign);
    return buf;
}

void nh_hex_encode(const uint8_t *bytes, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Hex digit value + 1, 0 for anything else (bulk imports decode millions of hashes). */
static const uint8_t hex_plus1[256] = {
    ['0'] = 1,  ['1'] = 2,  ['2'] = 3,  ['3'] = 4,  ['4'] = 5,  ['5'] = 6,  ['6'] = 7,  ['7'] = 8,
    ['8'] = 9,  ['9'] = 10, ['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15, ['f'] = 16,
    ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14, ['E'] = 15, ['F'] = 16,
};

static int hex_value(char c)
{
    return (int)hex_plus1[(unsigned char)c] - 1;
}

nh_status nh_hex_decode(const char *text, size_t len, uint8_t *bytes, size_t n)
{
    if (!text || len != 2 * n)
        return NH_ERR_INVALID;
    for (size_t i = 0; i < n; i++) {
        int hi = hex_value(text[2 * i]), lo = hex_value(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return NH_ERR_INVALID;
        bytes[i] = (uint8_t)(hi << 4 | lo);
    }
    return NH_OK;
}

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

size_t nh_base64_len(size_t n)
{
    return (n + 2) / 3 * 4;
}

void nh_base64_encode(const uint8_t *bytes, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8 | bytes[i + 2];
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = b64_alphabet[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)bytes[i] << 16;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = '=';
        out[o++] = '=';
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)bytes[i] << 16 | (uint32_t)bytes[i + 1] << 8;
        out[o++] = b64_alphabet[v >> 18];
        out[o++] = b64_alphabet[(v >> 12) & 63];
        out[o++] = b64_alphabet[(v >> 6) & 63];
        out[o++] = '=';
    }
    out[o] = '\0';
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

nh_status nh_base64_decode(const char *text, size_t len, uint8_t *bytes, size_t cap,
                           size_t *out_n)
{
    if (!text || len % 4 != 0)
        return NH_ERR_INVALID;
    size_t n = 0;
    for (size_t i = 0; i < len; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            char c = text[i + k];
            if (c == '=') {
                /* padding only in the last quantum, only in its last two places */
                if (i + 4 != len || k < 2)
                    return NH_ERR_INVALID;
                pad++;
                v[k] = 0;
            } else {
                if (pad)
                    return NH_ERR_INVALID;
                v[k] = b64_value(c);
                if (v[k] < 0)
                    return NH_ERR_INVALID;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        size_t take = 3 - (size_t)pad;
        /* non-canonical trailing bits are rejected so each hash has one spelling */
        if ((pad == 1 && (w & 0xff)) || (pad == 2 && (w & 0xffff)))
            return NH_ERR_INVALID;
        if (n + take > cap)
            return NH_ERR_INVALID;
        bytes[n++] = (uint8_t)(w >> 16);
        if (take > 1)
            bytes[n++] = (uint8_t)(w >> 8);
        if (take > 2)
            bytes[n++] = (uint8_t)w;
    }
    if (out_n)
        *out_n = n;
    return NH_OK;
}

unsigned nh_hamming(const uint8_t *a, const uint8_t *b, size_t n)
{
    unsigned d = 0;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t x, y;
        memcpy(&x, a + i, 8);
        memcpy(&y, b + i, 8);
        d += (unsigned)__builtin_popcountll(x ^ y);
    }
    for (; i < n; i++)
        d += (unsigned)__builtin_popcount((unsigned)(a[i] ^ b[i]));
    return d;
}

double nh_time_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
