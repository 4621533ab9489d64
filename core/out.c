/* nhash text writers: JSON strings, CSV fields, sha256sum-style paths. See nhash/out.h. */
#include "nhash/out.h"

#include <stdlib.h>
#include <string.h>

#include "nhash/core.h"

static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    unsigned cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3f);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

int nh_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(u + i, n - i);
        if (!k)
            return 0;
        i += k;
    }
    return 1;
}

void nh_json_string(FILE *f, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    fputc('"', f);
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t k = utf8_seq(u + i, n - i);
        if (!k) {
            fputs("\\ufffd", f);
            i++;
            continue;
        }
        if (k > 1) {
            fwrite(u + i, 1, k, f);
            i += k;
            continue;
        }
        switch (c) {
        case '"': fputs("\\\"", f); break;
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (c < 0x20 || c == 0x7f)
                fprintf(f, "\\u%04x", c);
            else
                fputc(c, f);
        }
        i++;
    }
    fputc('"', f);
}

void nh_csv_field(FILE *f, const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, f);
        return;
    }
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"')
            fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

int nh_text_path_needs_escape(const char *s)
{
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if (*u == '\\' || is_control(*u))
            return 1;
    return 0;
}

void nh_text_path(FILE *f, const char *s, int escape)
{
    if (!escape) {
        fputs(s, f);
        return;
    }
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        switch (*u) {
        case '\\': fputs("\\\\", f); break;
        case '\n': fputs("\\n", f); break;
        case '\r': fputs("\\r", f); break;
        case '\t': fputs("\\t", f); break;
        default:
            if (is_control(*u))
                fprintf(f, "\\x%02x", *u);
            else
                fputc(*u, f);
        }
    }
}

void nh_json_field(FILE *f, const char *key, const char *s)
{
    fprintf(f, "\"%s\":", key);
    nh_json_string(f, s);
    size_t n = strlen(s);
    if (nh_utf8_valid(s, n))
        return;
    char *b = malloc(nh_base64_len(n) + 1);
    if (!b)
        return;
    nh_base64_encode((const uint8_t *)s, n, b);
    fprintf(f, ",\"%s_b64\":\"%s\"", key, b);
    free(b);
}
