/*
 * libFuzzer harness: every `nhdb import` text format (dbtool/text.c). The input is an import
 * file; for each of neural, pdq, jsonl and csv it is split into records by nhdb_text_read
 * (reading from memory through fmemopen, as nhdb import reads its file) and each record is
 * parsed by nhdb_text_parse, reusing one nhdb_parsed as the importer does. The first line
 * also goes through nhdb_text_sniff (--format auto). Corpus: fuzz/corpus/nhdb_text.
 */
#define _GNU_SOURCE /* fmemopen */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t g_model[8] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0xee};

static void parse_all(const uint8_t *data, size_t size, nhdb_fmt fmt, int sniff)
{
    /* fmemopen needs a non-empty buffer it may write a NUL into: give it a copy. */
    char *copy = malloc(size + 1);
    if (!copy)
        return;
    memcpy(copy, data, size);
    copy[size] = '\0';
    FILE *f = fmemopen(copy, size ? size : 1, "r");
    if (!f) {
        free(copy);
        return;
    }
    char *line = NULL, msg[256];
    size_t cap = 0, lines = 0, n = 0;
    nhdb_parsed p;
    memset(&p, 0, sizeof p);
    while (nhdb_text_read(f, fmt, &line, &cap, &lines, &n) == 1) {
        if (sniff) {
            (void)nhdb_text_sniff(line);
            sniff = 0;
        }
        (void)nhdb_text_parse(fmt, line, n, g_model, &p, msg, sizeof msg);
    }
    nhdb_parsed_free(&p);
    free(line);
    fclose(f);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const nhdb_fmt fmts[] = {NHDB_FMT_NEURAL, NHDB_FMT_PDQ, NHDB_FMT_JSONL, NHDB_FMT_CSV};
    if (size == 0)
        return 0;
    for (size_t i = 0; i < sizeof fmts / sizeof fmts[0]; i++)
        parse_all(data, size, fmts[i], i == 0);
    return 0;
}
