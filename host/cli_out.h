/* nhash CLI output helpers: JSON strings, CSV fields, sha256sum-style path escaping. */
#ifndef NHASH_CLI_OUT_H
#define NHASH_CLI_OUT_H

#include <stddef.h>
#include <stdio.h>

#include "nhash/pipeline.h"

/* 1 when s[0..n) is valid UTF-8. */
int nh_utf8_valid(const char *s, size_t n);

/* Write s as a JSON string literal; invalid UTF-8 bytes become U+FFFD (callers add a
 * base64 copy of the exact bytes when nh_utf8_valid says no). */
void nh_json_string(FILE *f, const char *s);

/* Write s as one CSV field (RFC 4180 quoting when needed). */
void nh_csv_field(FILE *f, const char *s);

/* Write a path for a text line; returns 1 when it had to escape (newline or backslash),
 * in which case the caller starts the line with a backslash, as sha256sum does. */
int nh_text_path_needs_escape(const char *s);
void nh_text_path(FILE *f, const char *s, int escape);

/* Parse a --pdq-backend value (auto, c, cl); nonzero when unknown. */
int nh_cli_pdq_backend(const char *s, nh_pdq_backend *out);

#endif
