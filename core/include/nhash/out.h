/*
 * nhash text writers, shared by nhash and nhdb so that both write the same JSON and CSV:
 * JSON strings (valid UTF-8 as is, each invalid byte as U+FFFD, controls escaped), a JSON
 * string field with an exact base64 copy beside it when the bytes are not UTF-8 ("path"
 * and "path_b64"; nhdb import reads the _b64 copy back), RFC 4180 CSV fields, and paths on
 * text lines escaped as sha256sum does.
 */
#ifndef NHASH_OUT_H
#define NHASH_OUT_H

#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when s[0..n) is valid UTF-8. */
int nh_utf8_valid(const char *s, size_t n);

/* Write s as a JSON string literal; invalid UTF-8 bytes become U+FFFD (callers add a
 * base64 copy of the exact bytes when nh_utf8_valid says no). */
void nh_json_string(FILE *f, const char *s);

/* Write s as one CSV field (RFC 4180 quoting when needed). */
void nh_csv_field(FILE *f, const char *s);

/* Write a path for a text line. nh_text_path_needs_escape says 1 when the path holds a
 * backslash or any control character (0x00-0x1f, 0x7f); the caller then starts the line with
 * a backslash, as sha256sum does, and writes the path escaped: \\ \n \r as sha256sum
 * does, \t, and \xHH (two lowercase hex digits) for the other control bytes. Bytes 0x80 and
 * up are written as they are. */
int nh_text_path_needs_escape(const char *s);
void nh_text_path(FILE *f, const char *s, int escape);

/* "key":"s", then ,"key_b64":"BASE64" of the exact bytes when s is not valid UTF-8. */
void nh_json_field(FILE *f, const char *key, const char *s);

#ifdef __cplusplus
}
#endif
#endif
