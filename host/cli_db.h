/* nhash CLI <-> libnhdb glue: adding pipeline records to a hash set and resuming by digest
 * (matching is nhash/match.h). */
#ifndef NHASH_CLI_DB_H
#define NHASH_CLI_DB_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/pipeline.h"

typedef struct nh_cli_db nh_cli_db;

/* Open (creating when write) the set in dir. neural: the job's neural kind (model
 * fingerprint and width), NULL when it computes none. */
nh_status nh_cli_db_open(const char *dir, int write, const nh_kind *neural, nh_cli_db **out,
                         nh_error *err);
void nh_cli_db_close(nh_cli_db *d);

/* The skip hook for nh_pipeline_opts (thread-safe): digest already in the set, among the
 * entries of the job's neural kind when it has one (a second model or width into the same
 * set hashes every file again), else among all entries. */
int nh_cli_db_skip(const uint8_t digest[16], void *user);

/* Add one record's hashes (neural, pdq, digest) with its path, label and note. Entries are
 * committed in batches; nh_cli_db_flush commits what is pending. */
nh_status nh_cli_db_add(nh_cli_db *d, const nh_record *r, const char *label, const char *note,
                        nh_error *err);
nh_status nh_cli_db_flush(nh_cli_db *d, uint64_t *added, uint64_t *dupes, nh_error *err);

/* Entries added and duplicates found by the batches committed so far (after a failed add or
 * commit: what the set keeps). */
void nh_cli_db_committed(const nh_cli_db *d, uint64_t *added, uint64_t *dupes);

/* Which kinds the set holds, as NH_KIND_BIT(type): neural when it holds hashes of this
 * model, pdq, digest. *other_models: neural kinds of other models present. */
unsigned nh_cli_db_kinds(nh_cli_db *d, size_t *other_models);

/* The set's read snapshot (a read-only open), for nh_match_record; borrowed until close. */
struct nh_db_reader *nh_cli_db_reader(nh_cli_db *d);

/* Mark this thread as inside libnhdb (nesting allowed): a fatal signal until the matching
 * leave is reported as a damaged set, exit status 2. nh_cli_db_open installs the handler. */
void nh_cli_db_guard_enter(void);
void nh_cli_db_guard_leave(void);

#endif
