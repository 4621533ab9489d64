/*
 * nhdb text formats, read and written by the nhdb CLI (docs/nhdb.md, "Text formats"):
 *
 *   neural  one 24-hex-digit NeuralHash per line, optionally followed by whitespace and a path
 *           (nnhash.py output); the model fingerprint comes from the command line. Other
 *           widths by length: 2..256 hex digits in pairs (16 for 64 bits, 32 for 128 ...).
 *           In every format a neural entry's width (its kind's bits) is its hash's length.
 *   pdq     hash,quality,filename as Meta's pdq-photo-hasher writes it (64 hex digits).
 *   jsonl   one JSON object per line: kind, model, hash, digest, quality, source, label, note,
 *           added (source_b64, label_b64, note_b64: the exact bytes of a string that is not
 *           UTF-8); or a record line of `nhash hash --format jsonl` (path, neural,
 *           model_fingerprint, pdq, pdq_quality, xxh128), which gives that file's entries.
 *   csv     RFC 4180 with the header kind,model,hash,digest,quality,source,label,note,added;
 *           quoted fields may span lines.
 * Blank lines and lines starting with '#' are skipped in neural and pdq lists.
 */
#ifndef NHDB_TEXT_H
#define NHDB_TEXT_H

#include <stdio.h>

#include "nhdb/nhdb.h"

typedef enum nhdb_fmt {
    NHDB_FMT_AUTO = 0,
    NHDB_FMT_NEURAL,
    NHDB_FMT_PDQ,
    NHDB_FMT_JSONL,
    NHDB_FMT_CSV,
} nhdb_fmt;

nh_status nhdb_fmt_parse(const char *name, nhdb_fmt *out);
const char *nhdb_fmt_name(nhdb_fmt fmt);

/* One parsed record. Owns its string buffers; reuse it across lines, free with
 * nhdb_parsed_free. entry's pointers point into it. */
typedef struct nhdb_parsed {
    nh_db_entry entry;
    int skip; /* blank, comment or header line, or a record of a failed or skipped file */
    uint8_t hash[NH_DB_HASH_MAX], digest[16];
    /* A record line of `nhash hash --format jsonl` gives up to three entries (neural, pdq,
     * digest): entry, then extra[0 .. nextra). */
    nh_db_entry extra[2];
    size_t nextra;
    uint8_t extra_hash[2][NH_DB_HASH_MAX];
    char *source, *label, *note;
    size_t source_cap, label_cap, note_cap;
} nhdb_parsed;

void nhdb_parsed_free(nhdb_parsed *p);

/*
 * Read one record (a line; for CSV a quoted field may continue on further lines) into *buf
 * (realloc'd, NUL-terminated, newline stripped). *lines receives how many lines it spanned,
 * *n (may be NULL) its length in bytes, which counts any NUL bytes inside it.
 * Returns 1 on a record, 0 at end of file, -1 on an error (errno set).
 */
int nhdb_text_read(FILE *f, nhdb_fmt fmt, char **buf, size_t *cap, size_t *lines, size_t *n);

/* Guess the format of a first non-blank line; NHDB_FMT_AUTO when unknown. */
nhdb_fmt nhdb_text_sniff(const char *line);

/*
 * Parse one record: line is len bytes (as nhdb_text_read gives them) followed by a NUL.
 * neural_model is the model fingerprint for the neural format (NULL: all zero). On
 * NH_ERR_INVALID, msg (cap bytes) says what is wrong, without the line number. A record
 * that nh_db_add would refuse is invalid here too, so a validation pass catches it: a NUL
 * byte anywhere in the line (or a "\u0000" in a JSON string), a source, label or note over
 * NH_DB_STR_MAX bytes.
 */
nh_status nhdb_text_parse(nhdb_fmt fmt, const char *line, size_t len, const uint8_t *neural_model,
                          nhdb_parsed *out, char *msg, size_t cap);

/* Write one record in fmt (the CSV header is separate). Returns 0 or -1 on a write error. */
int nhdb_text_write(FILE *f, nhdb_fmt fmt, const nh_db_record *r);
int nhdb_text_csv_header(FILE *f);

#endif
