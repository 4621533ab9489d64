/* nhash CLI helpers (the text writers both CLIs share are nhash/out.h). */
#ifndef NHASH_CLI_OUT_H
#define NHASH_CLI_OUT_H

#include <signal.h>

#include "nhash/out.h"
#include "nhash/pipeline.h"

/*
 * The pipeline options nhash hash and nhash audit share, by their getopt letter: b --batch,
 * t --threads, B --backend, P --platform, D --device, d --decode, u --allow-untrusted,
 * x --max-pixels, Q --pdq-backend. Returns 0 when ch was one and arg was good (o updated), 2
 * when arg was bad (a message naming prog and the option is printed), 1 when ch is none of
 * them.
 */
int nh_cli_pipeline_option(const char *prog, int ch, const char *arg, nh_pipeline_opts *o);

/* Parse a --pdq-backend value (auto, c, cl); nonzero when unknown. */
int nh_cli_pdq_backend(const char *s, nh_pdq_backend *out);

/* Parse the value text of option name (e.g. "--batch") as a whole decimal number in
 * [min, max]: digits only (no sign, no spaces, no exponent, no suffix), no overflow. On
 * success writes *out and returns 0; otherwise prints "PROG: NAME: 'TEXT' is not a whole
 * number in MIN..MAX" (or "... is out of range MIN..MAX") on stderr and returns 2, the
 * usage exit status. prog, name and text are borrowed for the call. */
int nh_cli_parse_uint(const char *prog, const char *name, const char *text,
                      unsigned long long min, unsigned long long max, unsigned long long *out);

/* Parse a size "N" (square) or "WxH", each side in 1..max, as nh_cli_parse_uint does. */
int nh_cli_parse_size(const char *prog, const char *name, const char *text, unsigned max,
                      int *w, int *h);

/*
 * Stop requests for the long-running commands (hash, audit). SIGINT and SIGTERM, the first
 * and every later one alike, set *stop to the signal number and nothing else (a later one
 * also says on stderr that the batch in flight is still being finished): the pipeline
 * finishes the batch in flight, the command writes it out (and commits it with --db) and
 * exits 128 + that number. A parent that blocked either signal has it unblocked. The
 * handlers stay for the rest of the process, so a signal that comes while the last batch
 * is committed or the set closed cannot kill it there. stop is borrowed for that long.
 */
void nh_cli_signals_install(volatile sig_atomic_t *stop);

#endif
