/*
 * nhash core: status codes, per-context errors, hash codecs and Hamming distance.
 *
 * core depends on nothing but libc. Every fallible call in nhash returns an nh_status
 * (NH_OK == 0) and, where a context is at hand, fills an nh_error with a message written by
 * whoever detected the failure, the file it concerns and the foreign code (cl_int, MDB rc,
 * errno, vips) that caused it. Error state is per context or per worker, never global.
 *
 * Hashes are byte strings in canonical big-endian order: bit 0 (the first score or the
 * most significant DCT bit) is the most significant bit of byte 0, so memcmp order is
 * numeric order and hex reads the way nnhash.py prints it.
 */
#ifndef NHASH_CORE_H
#define NHASH_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum nh_status {
    NH_OK = 0,
    NH_ERR_INVALID = 1,     /* bad argument or malformed input text */
    NH_ERR_NOMEM = 2,       /* allocation failed */
    NH_ERR_IO = 3,          /* file system error; foreign code is errno */
    NH_ERR_DECODE = 4,      /* image could not be decoded (corrupt, truncated, unsupported) */
    NH_ERR_TOO_LARGE = 5,   /* refused by a size limit before decoding */
    NH_ERR_CL = 6,          /* OpenCL failure; foreign code is the cl_int */
    NH_ERR_CL_BUILD = 7,    /* kernel build failed; message holds the build log */
    NH_ERR_NOT_FOUND = 8,   /* no such device, kernel, key or file */
    NH_ERR_FORMAT = 9,      /* corrupt or unsupported file format (model, database record) */
    NH_ERR_DB = 10,         /* LMDB failure; foreign code is the MDB rc */
    NH_ERR_UNSUPPORTED = 11,/* valid request that this build cannot serve */
    NH_ERR_INTERRUPTED = 12,/* stopped on request (signal) */
} nh_status;

/* Which namespace nh_error.foreign belongs to. */
typedef enum nh_foreign {
    NH_FOREIGN_NONE = 0,
    NH_FOREIGN_ERRNO = 1,
    NH_FOREIGN_CL = 2,
    NH_FOREIGN_MDB = 3,
    NH_FOREIGN_VIPS = 4,
} nh_foreign;

#define NH_ERROR_MSG_MAX 1024
#define NH_ERROR_PATH_MAX 1024

/* A caller-owned error record. Zero-initialise or nh_error_clear() before use. */
typedef struct nh_error {
    nh_status status;
    nh_foreign foreign_kind;
    long foreign;                  /* the foreign code, meaningful per foreign_kind */
    char path[NH_ERROR_PATH_MAX];  /* file the error concerns, "" if none */
    char msg[NH_ERROR_MSG_MAX];    /* human-readable reason, never ends in a newline */
} nh_error;

/* Reset an error record to NH_OK. err may be NULL. */
void nh_error_clear(nh_error *err);

/*
 * Record an error and return its status, so callers write `return nh_error_set(...)`.
 * err may be NULL (the status is still returned). path may be NULL. The message is
 * printf-formatted and truncated to NH_ERROR_MSG_MAX.
 */
nh_status nh_error_set(nh_error *err, nh_status status, nh_foreign kind, long foreign,
                       const char *path, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Short stable name of a status ("ok", "invalid", "decode", ...). Never NULL. */
const char *nh_status_name(nh_status status);

/* Name of an OpenCL error code ("CL_OUT_OF_RESOURCES"), or "CL_UNKNOWN_ERROR". */
const char *nh_cl_error_name(long code);

/*
 * Format an error as one line: "PATH: reason (foreign)" into buf of size n.
 * Returns buf.
 */
char *nh_error_format(const nh_error *err, char *buf, size_t n);

/* Lowercase hex of n bytes into out (2n+1 bytes incl. NUL). */
void nh_hex_encode(const uint8_t *bytes, size_t n, char *out);

/*
 * Parse exactly 2n hex digits (either case) from text into bytes[n]. Surrounding
 * whitespace is not accepted. Returns NH_ERR_INVALID on a wrong length or non-hex digit.
 */
nh_status nh_hex_decode(const char *text, size_t len, uint8_t *bytes, size_t n);

/* Standard base64 (RFC 4648, with '=' padding) of n bytes; out needs nh_base64_len(n)+1. */
size_t nh_base64_len(size_t n);
void nh_base64_encode(const uint8_t *bytes, size_t n, char *out);

/*
 * Decode standard base64 (padding required when the length calls for it) into bytes.
 * *out_n receives the decoded length; cap is the capacity of bytes. NH_ERR_INVALID on bad
 * characters, bad padding or overflow of cap.
 */
nh_status nh_base64_decode(const char *text, size_t len, uint8_t *bytes, size_t cap,
                           size_t *out_n);

/* Number of differing bits between two n-byte hashes. */
unsigned nh_hamming(const uint8_t *a, const uint8_t *b, size_t n);

/* Hamming distance of 96-bit and 256-bit hashes held as big-endian 64-bit words. */
static inline unsigned nh_hamming_u64(const uint64_t *a, const uint64_t *b, size_t words)
{
    unsigned d = 0;
    for (size_t i = 0; i < words; i++)
        d += (unsigned)__builtin_popcountll(a[i] ^ b[i]);
    return d;
}

/* Bit i (0 = MSB of byte 0) of a hash. */
static inline int nh_hash_bit(const uint8_t *h, unsigned i)
{
    return (h[i >> 3] >> (7 - (i & 7))) & 1;
}

/* Monotonic time in seconds, for benchmarks and progress. */
double nh_time_now(void);

#ifdef __cplusplus
}
#endif
#endif
