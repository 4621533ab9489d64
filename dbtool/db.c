/*
 * libnhdb storage: environment, schema, record codecs, batched writes, stats and verify.
 * The layout of every table is in docs/nhdb.md; searching lives in db_query.c.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>

#include "db_internal.h"

/* Address space, not disk: the file grows with the data. Large enough that a process which
 * keeps a reader open while it writes (and so cannot remap) rarely meets the limit. */
#define NHDB_DEFAULT_MAPSIZE ((size_t)4 << 30)

/* Free space under which a short write (EIO) is taken for a full disk: a write that stopped
 * for want of room leaves the file system all but full (an aborted transaction does not give
 * back the file's pages), while an EIO of a failing device leaves its free space as it was. */
#define NHDB_DISK_FULL_BYTES (1ull << 20)

static const char schema_key[] = "schema";

/* Whether the file system holding path has (almost) no room left: LMDB reports a write that
 * came up short as EIO, which on a full disk is the only sign of it. The bytes this process
 * may still write: f_bfree for root (who may use the reserved blocks), else f_bavail. */
static int nhdb_disk_full(const char *path)
{
    struct statvfs vs;
    if (!path || !path[0] || statvfs(path, &vs) != 0)
        return 0;
    unsigned long long blocks = geteuid() == 0 ? vs.f_bfree : vs.f_bavail;
    return blocks * vs.f_frsize < NHDB_DISK_FULL_BYTES;
}

nh_status nhdb_mdb_error(nh_error *err, int rc, const char *path, const char *what)
{
    if (rc == ENOSPC || (rc == EIO && nhdb_disk_full(path)))
        return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_MDB, rc, path, "%s: no space left on device",
                            what);
    return nh_error_set(err, NH_ERR_DB, NH_FOREIGN_MDB, rc, path, "%s: %s", what, mdb_strerror(rc));
}

unsigned nhdb_default_m(const nh_db *db, const nh_kind *kind)
{
    switch (kind->type) {
    case NH_KIND_NEURAL: {
        /* The schema's count is for 96 bits; other widths keep its substring length:
         * round(bits * m96 / 96), at least 2 and at least ceil(bits / 32) (substrings are
         * at most 32 bits), at most 64. */
        unsigned bits = nh_kind_bits(kind);
        if (bits == NH_NEURAL_DEFAULT_BITS)
            return db->neural_m;
        unsigned m =
            (2 * bits * db->neural_m + NH_NEURAL_DEFAULT_BITS) / (2 * NH_NEURAL_DEFAULT_BITS);
        unsigned lo = (bits + 31) / 32;
        if (lo < 2)
            lo = 2;
        if (m < lo)
            m = lo;
        return m > 64 ? 64 : m;
    }
    case NH_KIND_PDQ:
        return db->pdq_m;
    case NH_KIND_DIGEST:
        return 0;
    }
    return 0;
}

int nhdb_txn_begin(nh_db *db, unsigned flags, MDB_txn **txn)
{
    int rc = mdb_txn_begin(db->env, NULL, flags, txn);
    if (rc == MDB_MAP_RESIZED) {
        /* Another process grew the map; adopt its size. */
        rc = mdb_env_set_mapsize(db->env, 0);
        if (rc == 0)
            rc = mdb_txn_begin(db->env, NULL, flags, txn);
    }
    return rc;
}

uint64_t nhdb_dedupe_hash(const uint8_t *hash, unsigned hb, const char *src, size_t src_len)
{
    /* The hash length is fixed per kind, so seeding the source hash with the hash of the hash
     * binds both; a collision is resolved by comparing the stored entry. */
    return XXH3_64bits_withSeed(src, src_len, XXH3_64bits(hash, hb));
}

uint64_t nhdb_sum(const MDB_val *key, const void *val, size_t n)
{
    return XXH3_64bits_withSeed(val, n, XXH3_64bits(key->mv_data, key->mv_size));
}

void nhdb_seal(const MDB_val *key, const MDB_val *val)
{
    size_t n = val->mv_size - NHDB_SUM_BYTES;
    nhdb_put_le64((uint8_t *)val->mv_data + n, nhdb_sum(key, val->mv_data, n));
}

int nhdb_sum_ok(const MDB_val *key, const MDB_val *val)
{
    if (val->mv_size < NHDB_SUM_BYTES)
        return 0;
    size_t n = val->mv_size - NHDB_SUM_BYTES;
    return nhdb_get_le64((const uint8_t *)val->mv_data + n) == nhdb_sum(key, val->mv_data, n);
}

/* ---- record codecs (docs/nhdb.md, "entries") ---- */

size_t nhdb_rec_size(unsigned hb, size_t src, size_t lab, size_t note)
{
    return NHDB_REC_HEADER + hb + src + 1 + lab + 1 + note + 1;
}

static void rec_encode(uint8_t *p, uint32_t kind_id, unsigned hb, const nhdb_pending *e,
                       const char *arena)
{
    unsigned flags =
        (e->has_digest ? NHDB_FLAG_DIGEST : 0) | (e->quality >= 0 ? NHDB_FLAG_QUALITY : 0);
    nhdb_put_le16(p + 0, NHDB_REC_VERSION);
    nhdb_put_le16(p + 2, (uint16_t)flags);
    nhdb_put_le32(p + 4, kind_id);
    nhdb_put_le64(p + 8, (uint64_t)e->added);
    nhdb_put_le16(p + 16, (uint16_t)(e->quality >= 0 ? e->quality : 0));
    nhdb_put_le16(p + 18, (uint16_t)hb);
    nhdb_put_le32(p + 20, (uint32_t)e->src_len);
    nhdb_put_le32(p + 24, (uint32_t)e->lab_len);
    nhdb_put_le32(p + 28, (uint32_t)e->note_len);
    if (e->has_digest)
        memcpy(p + 32, e->digest, 16);
    else
        memset(p + 32, 0, 16);
    uint8_t *q = p + NHDB_REC_HEADER;
    memcpy(q, e->hash, hb);
    q += hb;
    memcpy(q, arena + e->src_off, e->src_len);
    q += e->src_len;
    *q++ = 0;
    memcpy(q, arena + e->lab_off, e->lab_len);
    q += e->lab_len;
    *q++ = 0;
    memcpy(q, arena + e->note_off, e->note_len);
    q += e->note_len;
    *q = 0;
}

nh_status nhdb_rec_decode(const MDB_val *key, const MDB_val *val, unsigned tail,
                          nh_db_record *out)
{
    const uint8_t *p = val->mv_data;
    if (key->mv_size != 8 || val->mv_size < NHDB_REC_HEADER + tail)
        return NH_ERR_FORMAT;
    if (nhdb_get_le16(p) != NHDB_REC_VERSION)
        return NH_ERR_FORMAT;
    unsigned flags = nhdb_get_le16(p + 2);
    uint32_t kind_id = nhdb_get_le32(p + 4);
    unsigned hb = nhdb_get_le16(p + 18);
    size_t sl = nhdb_get_le32(p + 20), ll = nhdb_get_le32(p + 24), nl = nhdb_get_le32(p + 28);
    if (hb == 0 || hb > NH_DB_HASH_MAX || sl > NHDB_STR_MAX || ll > NHDB_STR_MAX ||
        nl > NHDB_STR_MAX || val->mv_size != nhdb_rec_size(hb, sl, ll, nl) + tail)
        return NH_ERR_FORMAT;
    if (tail && !nhdb_sum_ok(key, val))
        return NH_ERR_FORMAT;
    out->id = nhdb_get_be64(key->mv_data);
    if ((out->id >> NHDB_ORD_BITS) != kind_id)
        return NH_ERR_FORMAT;
    out->bits = hb * 8;
    out->added = (int64_t)nhdb_get_le64(p + 8);
    out->quality = (flags & NHDB_FLAG_QUALITY) ? nhdb_get_le16(p + 16) : -1;
    out->digest = (flags & NHDB_FLAG_DIGEST) ? p + 32 : NULL;
    out->hash = p + NHDB_REC_HEADER;
    const char *s = (const char *)p + NHDB_REC_HEADER + hb;
    out->source = s;
    out->label = s + sl + 1;
    out->note = s + sl + 1 + ll + 1;
    if (out->source[sl] || out->label[ll] || out->note[nl])
        return NH_ERR_FORMAT;
    memset(&out->kind, 0, sizeof out->kind); /* the caller fills the kind from kind_id */
    return NH_OK;
}

void nhdb_kind_encode(const nhdb_kind_info *k, uint8_t out[NHDB_KIND_REC_SIZE])
{
    nhdb_put_le16(out + 0, NHDB_KIND_REC_VERSION);
    out[2] = (uint8_t)k->kind.type;
    out[3] = (uint8_t)k->m;
    nhdb_put_le16(out + 4, (uint16_t)k->bits);
    nhdb_put_le16(out + 6, 0);
    memcpy(out + 8, k->kind.model, 8);
    nhdb_put_le64(out + 16, k->count);
}

nh_status nhdb_kind_decode(const MDB_val *key, const MDB_val *val, unsigned tail,
                           nhdb_kind_info *out)
{
    const uint8_t *p = val->mv_data;
    if (key->mv_size != 5 || val->mv_size != NHDB_KIND_REC_SIZE + tail ||
        nhdb_get_le16(p) != NHDB_KIND_REC_VERSION || (tail && !nhdb_sum_ok(key, val)))
        return NH_ERR_FORMAT;
    memset(out, 0, sizeof *out);
    out->id = nhdb_get_be32((const uint8_t *)key->mv_data + 1);
    out->kind.type = (nh_kind_type)p[2];
    out->m = p[3];
    out->bits = nhdb_get_le16(p + 4);
    out->hb = out->bits / 8;
    memcpy(out->kind.model, p + 8, 8);
    out->kind.bits = out->bits;
    out->count = nhdb_get_le64(p + 16);
    if (!nh_kind_bits_valid(out->kind.type, out->bits) || out->bits > 8 * NH_DB_HASH_MAX ||
        out->count > NHDB_ORD_MASK)
        return NH_ERR_FORMAT;
    if (out->m && ((out->bits + out->m - 1) / out->m > 32 || out->m > 64))
        return NH_ERR_FORMAT;
    return NH_OK;
}

nh_status nhdb_kinds_load(nh_db *db, MDB_txn *txn, nhdb_kind_info **out, size_t *n, nh_error *err)
{
    nh_status st = NH_OK;
    MDB_cursor *cur = NULL;
    nhdb_kind_info *arr = NULL;
    size_t cnt = 0, cap = 0;
    int rc = mdb_cursor_open(txn, db->dbi_meta, &cur);
    if (rc) {
        st = nhdb_mdb_error(err, rc, db->path, "open meta cursor");
        goto cleanup;
    }
    uint8_t prefix = 'k';
    MDB_val k = {1, &prefix}, v;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const uint8_t *kp = k.mv_data;
        if (k.mv_size != 5 || kp[0] != 'k')
            break;
        if (cnt == cap) {
            cap = cap ? cap * 2 : 8;
            nhdb_kind_info *na = realloc(arr, cap * sizeof *arr);
            if (!na) {
                st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "kinds");
                goto cleanup;
            }
            arr = na;
        }
        if (nhdb_kind_decode(&k, &v, db->tail, &arr[cnt])) {
            st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, db->path,
                              "corrupt kind record %u", (unsigned)nhdb_get_be32(kp + 1));
            goto cleanup;
        }
        cnt++;
    }
    if (rc && rc != MDB_NOTFOUND) {
        st = nhdb_mdb_error(err, rc, db->path, "read kinds");
        goto cleanup;
    }
    *out = arr;
    *n = cnt;
    arr = NULL;
cleanup:
    free(arr);
    mdb_cursor_close(cur);
    return st;
}

/* ---- open / close ---- */

static nh_status open_tables(nh_db *db, MDB_txn *txn, unsigned create, nh_error *err)
{
    static const struct {
        const char *name;
        unsigned flags;
        size_t off;
    } t[] = {
        {"meta", 0, offsetof(nh_db, dbi_meta)},
        {"entries", 0, offsetof(nh_db, dbi_entries)},
        {"mihrun", 0, offsetof(nh_db, dbi_mih)},
        {"packed", 0, offsetof(nh_db, dbi_packed)},
        {"digest", MDB_DUPSORT | MDB_DUPFIXED, offsetof(nh_db, dbi_digest)},
        {"occupancy", 0, offsetof(nh_db, dbi_occ)},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)db + t[i].off);
        int rc = mdb_dbi_open(txn, t[i].name, t[i].flags | create, dbi);
        if (rc == MDB_NOTFOUND)
            return nh_error_set(err, NH_ERR_NOT_FOUND, NH_FOREIGN_MDB, rc, db->path,
                                "not an nhdb database (no table %s)", t[i].name);
        if (rc)
            return nhdb_mdb_error(err, rc, db->path, t[i].name);
    }
    return NH_OK;
}

/* Schema 1 -> 2: the dup-sorted `mih` table (one row per entry and substring) becomes one
 * MIH run per kind and substring, built from the packed arrays, and the dup-sorted `dedupe`
 * table one dedupe run per kind, built from the entry records; everything else is unchanged.
 * One write transaction: a crash leaves the version 1 database as it was. */
static int upgrade_attempt(nh_db *db, nh_error *err)
{
    MDB_txn *txn;
    MDB_dbi meta, packed, runs, old;
    nhdb_kind_info *kinds = NULL;
    size_t nk = 0;
    uint64_t *a = NULL, *tmp = NULL;
    int rc = nhdb_txn_begin(db, 0, &txn);
    if (rc)
        return rc;
    if ((rc = mdb_dbi_open(txn, "meta", 0, &meta)) || (rc = mdb_dbi_open(txn, "packed", 0, &packed)) ||
        (rc = mdb_dbi_open(txn, "mihrun", MDB_CREATE, &runs)) ||
        (rc = mdb_dbi_open(txn, "mih", MDB_DUPSORT | MDB_DUPFIXED, &old)))
        goto done;
    db->dbi_meta = meta;
    if (nhdb_kinds_load(db, txn, &kinds, &nk, err)) {
        rc = -1;
        goto done;
    }
    for (size_t ki = 0; ki < nk && !rc; ki++) {
        const nhdb_kind_info *k = &kinds[ki];
        if (!k->m || !k->count)
            continue;
        if (k->count > UINT32_MAX) {
            rc = MDB_CORRUPTED;
            break;
        }
        free(a);
        free(tmp);
        a = malloc(k->count * sizeof *a);
        tmp = malloc(k->count * sizeof *tmp);
        if (!a || !tmp) {
            nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "upgrade");
            rc = -1;
            break;
        }
        for (unsigned s = 0; s < k->m && !rc; s++) {
            unsigned st0 = nhdb_sub_start(k->bits, k->m, s), len = nhdb_sub_len(k->bits, k->m, s);
            for (uint64_t c0 = 0; c0 < k->count && !rc; c0 += NHDB_CHUNK) {
                uint8_t kb[8];
                nhdb_put_be32(kb, k->id);
                nhdb_put_be32(kb + 4, (uint32_t)(c0 >> NHDB_CHUNK_SHIFT));
                MDB_val key = {8, kb}, v;
                uint64_t cn = k->count - c0 < NHDB_CHUNK ? k->count - c0 : NHDB_CHUNK;
                if ((rc = mdb_get(txn, packed, &key, &v)) || v.mv_size != cn * k->hb) {
                    rc = MDB_CORRUPTED;
                    break;
                }
                for (uint64_t j = 0; j < cn; j++)
                    a[c0 + j] = (uint64_t)nhdb_sub_extract((const uint8_t *)v.mv_data + j * k->hb,
                                                           st0, len)
                                    << 32 |
                                (c0 + j);
            }
            if (rc)
                break;
            nhdb_sort_bits(a, tmp, k->count, 32, len);
            rc = nhdb_runs_add(txn, runs, k->id, s, len, 0, a, k->count, 0);
            if (rc == -1)
                nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "upgrade");
        }
    }
    /* The dedupe keys' top 32 bits, from the entry records, as each kind's dedupe runs. */
    if (!rc) {
        MDB_dbi entries, dedupe;
        MDB_cursor *c = NULL;
        uint32_t **top = calloc(nk + 1, sizeof *top);
        rc = top ? 0 : -1;
        for (size_t ki = 0; ki < nk && !rc; ki++)
            if (!(top[ki] = malloc((kinds[ki].count + 1) * sizeof **top)))
                rc = -1;
        if (!rc && !(rc = mdb_dbi_open(txn, "entries", 0, &entries)) &&
            !(rc = mdb_dbi_open(txn, "dedupe", MDB_DUPSORT | MDB_DUPFIXED, &dedupe)) &&
            !(rc = mdb_cursor_open(txn, entries, &c))) {
            MDB_val key, v;
            for (rc = mdb_cursor_get(c, &key, &v, MDB_FIRST); rc == 0;
                 rc = mdb_cursor_get(c, &key, &v, MDB_NEXT)) {
                nh_db_record r;
                size_t ki = 0;
                if (nhdb_rec_decode(&key, &v, 0, &r)) {
                    rc = MDB_CORRUPTED;
                    break;
                }
                while (ki < nk && kinds[ki].id != (uint32_t)(r.id >> NHDB_ORD_BITS))
                    ki++;
                uint64_t ord = r.id & NHDB_ORD_MASK;
                if (ki == nk || ord >= kinds[ki].count || r.bits != kinds[ki].bits) {
                    rc = MDB_CORRUPTED;
                    break;
                }
                top[ki][ord] = (uint32_t)(nhdb_dedupe_hash(r.hash, kinds[ki].hb, r.source,
                                                           strlen(r.source)) >>
                                          32);
            }
            mdb_cursor_close(c);
            if (rc == MDB_NOTFOUND)
                rc = 0;
            for (size_t ki = 0; ki < nk && !rc; ki++) {
                const nhdb_kind_info *k = &kinds[ki];
                free(a);
                free(tmp);
                a = malloc((k->count + 1) * sizeof *a);
                tmp = malloc((k->count + 1) * sizeof *tmp);
                if (!a || !tmp) {
                    rc = -1;
                    break;
                }
                for (uint64_t j = 0; j < k->count; j++)
                    a[j] = (uint64_t)top[ki][j] << 32 | j;
                nhdb_sort_bits(a, tmp, k->count, 32, NHDB_DEDUPE_LEN);
                rc = nhdb_runs_add(txn, runs, k->id, NHDB_DEDUPE_S, NHDB_DEDUPE_LEN, 0, a,
                                   k->count, 0);
            }
            if (!rc)
                rc = mdb_drop(txn, dedupe, 1);
        }
        for (size_t ki = 0; top && ki < nk; ki++)
            free(top[ki]);
        free(top);
        if (rc == -1)
            nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "upgrade");
    }
    if (!rc && !(rc = mdb_drop(txn, old, 1))) {
        uint8_t rec[16];
        memcpy(rec, "NHDB", 4);
        nhdb_put_le32(rec + 4, NHDB_SCHEMA_NOSUM); /* nh_db_upgrade adds the checksums */
        nhdb_put_le32(rec + 8, db->neural_m);
        nhdb_put_le32(rec + 12, db->pdq_m);
        MDB_val key = {sizeof schema_key - 1, (void *)schema_key}, v = {sizeof rec, rec};
        rc = mdb_put(txn, meta, &key, &v, 0);
    }
done:
    free(a);
    free(tmp);
    free(kinds);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Schema 2 -> 3: every value of meta, entries, mihrun, packed and occupancy gets its checksum
 * appended (the digest index is unchanged), and the schema record is sealed and says 3. One
 * write transaction: a crash leaves the version-2 set as it was. */
static int add_sums_attempt(nh_db *db, nh_error *err)
{
    MDB_txn *txn;
    MDB_cursor *c = NULL;
    uint8_t *buf = NULL, kb[512];
    size_t cap = 0;
    const MDB_dbi dbis[] = {db->dbi_meta, db->dbi_entries, db->dbi_mih, db->dbi_packed,
                            db->dbi_occ};
    int rc = nhdb_txn_begin(db, 0, &txn);
    if (rc)
        return rc;
    for (size_t t = 0; t < sizeof dbis / sizeof dbis[0] && !rc; t++) {
        MDB_val k, v;
        if ((rc = mdb_cursor_open(txn, dbis[t], &c)))
            break;
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (t == 0 && k.mv_size == sizeof schema_key - 1 &&
                memcmp(k.mv_data, schema_key, k.mv_size) == 0)
                continue; /* written last */
            if (k.mv_size > sizeof kb) {
                rc = MDB_BAD_VALSIZE;
                break;
            }
            if (v.mv_size + NHDB_SUM_BYTES > cap) {
                size_t ncap = (v.mv_size + NHDB_SUM_BYTES) * 2;
                uint8_t *nb = realloc(buf, ncap);
                if (!nb) {
                    nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "upgrade");
                    rc = -1;
                    break;
                }
                buf = nb;
                cap = ncap;
            }
            /* copies: both point into the page this put rewrites */
            memcpy(kb, k.mv_data, k.mv_size);
            memcpy(buf, v.mv_data, v.mv_size);
            MDB_val key = {k.mv_size, kb}, nv = {v.mv_size + NHDB_SUM_BYTES, buf};
            nhdb_seal(&key, &nv);
            if ((rc = mdb_cursor_put(c, &key, &nv, MDB_CURRENT)))
                break;
        }
        mdb_cursor_close(c);
        c = NULL;
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    if (!rc) {
        uint8_t rec[16 + NHDB_SUM_BYTES];
        memcpy(rec, "NHDB", 4);
        nhdb_put_le32(rec + 4, NH_DB_SCHEMA_VERSION);
        nhdb_put_le32(rec + 8, db->neural_m);
        nhdb_put_le32(rec + 12, db->pdq_m);
        MDB_val key = {sizeof schema_key - 1, (void *)schema_key}, v = {sizeof rec, rec};
        nhdb_seal(&key, &v);
        rc = mdb_put(txn, db->dbi_meta, &key, &v, 0);
    }
    free(buf);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return mdb_txn_commit(txn);
}

/* Run an upgrade transaction, growing the map and running it again while it is full. */
static nh_status upgrade_run(nh_db *db, int (*attempt)(nh_db *, nh_error *), const char *what,
                             nh_error *err)
{
    for (;;) {
        int rc = attempt(db, err);
        if (rc == 0)
            return NH_OK;
        if (rc == -1)
            return err && err->status ? err->status : NH_ERR_DB;
        if (rc != MDB_MAP_FULL)
            return nhdb_mdb_error(err, rc, db->path, what);
        MDB_envinfo info;
        mdb_env_info(db->env, &info);
        size_t grow = info.me_mapsize < ((size_t)1 << 30) ? info.me_mapsize : ((size_t)1 << 30);
        if ((rc = mdb_env_set_mapsize(db->env, info.me_mapsize + grow)))
            return nhdb_mdb_error(err, rc, db->path, "grow map");
    }
}

/* data.mdb must reach the end of the environment's last page. */
static nh_status check_file_size(nh_db *db, const char *dir, const MDB_envinfo *info,
                                 nh_error *err)
{
    MDB_stat es;
    if (mdb_env_stat(db->env, &es) != 0)
        return NH_OK;
    char file[4096];
    snprintf(file, sizeof file, "%s/data.mdb", dir);
    struct stat sb;
    if (stat(file, &sb) != 0)
        return NH_OK;
    unsigned long long need = ((unsigned long long)info->me_last_pgno + 1) * es.ms_psize;
    if ((unsigned long long)sb.st_size < need)
        return nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, dir,
                            "data.mdb is truncated: %llu bytes, but its last page ends at %llu "
                            "(restore the set from a copy)",
                            (unsigned long long)sb.st_size, need);
    return NH_OK;
}

nh_status nh_db_open(const char *path, unsigned flags, const nh_db_create_opts *opts, nh_db **out,
                     nh_error *err)
{
    nh_status st = NH_OK;
    nh_db *db = NULL;
    MDB_txn *txn = NULL;
    int rc;
    if (!path || !out)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, path, "nh_db_open: NULL");
    nh_db_create_opts o = {0};
    if (opts)
        o = *opts;
    if (!o.neural_substrings)
        o.neural_substrings = 4;
    if (!o.pdq_substrings)
        o.pdq_substrings = 12;
    if (!o.initial_mapsize)
        o.initial_mapsize = NHDB_DEFAULT_MAPSIZE;
    if (o.neural_substrings < 3 || o.neural_substrings > 32 || o.pdq_substrings < 8 ||
        o.pdq_substrings > 64)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, path,
                            "substrings out of range (neural 3..32, pdq 8..64)");

    struct stat sb;
    if (stat(path, &sb) != 0) {
        if (errno != ENOENT || !(flags & NH_DB_OPEN_CREATE))
            return nh_error_set(err, errno == ENOENT ? NH_ERR_NOT_FOUND : NH_ERR_IO,
                                NH_FOREIGN_ERRNO, errno, path, "no database: %s", strerror(errno));
        if (mkdir(path, 0775) != 0 && errno != EEXIST)
            return nh_error_set(err, NH_ERR_IO, NH_FOREIGN_ERRNO, errno, path,
                                "create directory: %s", strerror(errno));
    } else if (!S_ISDIR(sb.st_mode)) {
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, path,
                            "an nhdb database is a directory");
    }

    db = calloc(1, sizeof *db);
    if (!db)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, path, "nh_db");
    snprintf(db->path, sizeof db->path, "%s", path);
    db->flags = flags;
    if ((rc = mdb_env_create(&db->env)) || (rc = mdb_env_set_maxdbs(db->env, 10)) ||
        (rc = mdb_env_set_maxreaders(db->env, 512))) {
        st = nhdb_mdb_error(err, rc, path, "create environment");
        goto cleanup;
    }
    if ((rc = mdb_env_set_mapsize(db->env, o.initial_mapsize))) {
        st = nhdb_mdb_error(err, rc, path, "set map size");
        goto cleanup;
    }
    unsigned eflags = MDB_NOTLS | MDB_NORDAHEAD;
    if (flags & NH_DB_OPEN_READONLY)
        eflags |= MDB_RDONLY;
    if (flags & NH_DB_OPEN_NOSYNC)
        eflags |= MDB_NOSYNC;
    rc = mdb_env_open(db->env, path, eflags, 0664);
    if (rc) {
        st = rc == ENOENT
                 ? nh_error_set(err, NH_ERR_NOT_FOUND, NH_FOREIGN_MDB, rc, path, "no database here")
                 : nhdb_mdb_error(err, rc, path, "open environment");
        goto cleanup;
    }
    /* A reader killed mid-transaction leaves a stale slot; reclaim it. */
    int dead = 0;
    mdb_reader_check(db->env, &dead);
    /* The map may have been grown by an earlier writer; use the larger size. */
    MDB_envinfo info;
    mdb_env_info(db->env, &info);
    /* A data.mdb shorter than its last page (cut by a copy, a full disk, a damaged medium) would
     * raise SIGBUS at the first read of a missing page: refuse it here, from the meta page. */
    if ((st = check_file_size(db, path, &info, err)))
        goto cleanup;
    if (info.me_mapsize < o.initial_mapsize)
        mdb_env_set_mapsize(db->env, o.initial_mapsize);

    rc = nhdb_txn_begin(db, (flags & NH_DB_OPEN_READONLY) ? MDB_RDONLY : 0, &txn);
    if (rc) {
        st = nhdb_mdb_error(err, rc, path, "begin transaction");
        goto cleanup;
    }
    int creating = 0;
    MDB_dbi probe;
    MDB_val k = {sizeof schema_key - 1, (void *)schema_key}, v;
    rc = mdb_dbi_open(txn, "meta", 0, &probe);
    if (rc == MDB_NOTFOUND) {
        if (!(flags & NH_DB_OPEN_CREATE) || (flags & NH_DB_OPEN_READONLY)) {
            st = nh_error_set(err, NH_ERR_NOT_FOUND, NH_FOREIGN_MDB, rc, path,
                              "no nhdb database here");
            goto cleanup;
        }
        creating = 1;
    } else if (rc) {
        st = nhdb_mdb_error(err, rc, path, "open meta");
        goto cleanup;
    }
    if (creating) {
        /* An LMDB environment holding anything else is not ours to turn into a set. */
        MDB_dbi main_dbi;
        MDB_stat ms;
        if (mdb_dbi_open(txn, NULL, 0, &main_dbi) == 0 && mdb_stat(txn, main_dbi, &ms) == 0 &&
            ms.ms_entries > 0) {
            st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, path,
                              "an LMDB database that is not an nhdb set (%zu entries of its "
                              "own); refusing to write into it",
                              (size_t)ms.ms_entries);
            goto cleanup;
        }
        if ((st = open_tables(db, txn, MDB_CREATE, err)))
            goto cleanup;
        uint8_t rec[16 + NHDB_SUM_BYTES];
        memcpy(rec, "NHDB", 4);
        nhdb_put_le32(rec + 4, NH_DB_SCHEMA_VERSION);
        nhdb_put_le32(rec + 8, o.neural_substrings);
        nhdb_put_le32(rec + 12, o.pdq_substrings);
        v.mv_size = sizeof rec;
        v.mv_data = rec;
        nhdb_seal(&k, &v);
        if ((rc = mdb_put(txn, db->dbi_meta, &k, &v, 0)) || (rc = mdb_txn_commit(txn))) {
            txn = NULL;
            st = nhdb_mdb_error(err, rc, path, "write schema");
            goto cleanup;
        }
        txn = NULL;
        db->neural_m = o.neural_substrings;
        db->pdq_m = o.pdq_substrings;
        db->version = NH_DB_SCHEMA_VERSION;
        db->tail = NHDB_SUM_BYTES;
    } else {
        rc = mdb_get(txn, probe, &k, &v);
        if (rc) {
            st = rc == MDB_NOTFOUND ? nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_MDB, rc, path,
                                                   "no schema record")
                                    : nhdb_mdb_error(err, rc, path, "read schema");
            goto cleanup;
        }
        const uint8_t *p = v.mv_data;
        unsigned version = v.mv_size >= 16 && memcmp(p, "NHDB", 4) == 0 ? nhdb_get_le32(p + 4) : 0;
        if (version > NH_DB_SCHEMA_VERSION) {
            st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, path,
                              "schema version %u, this build reads %u", version,
                              NH_DB_SCHEMA_VERSION);
            goto cleanup;
        }
        /* Schema 3 seals its schema record like every other value; 1 and 2 have none. */
        if (!version || v.mv_size != 16 + (version > NHDB_SCHEMA_NOSUM ? NHDB_SUM_BYTES : 0) ||
            (version > NHDB_SCHEMA_NOSUM && !nhdb_sum_ok(&k, &v))) {
            st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, path,
                              "bad schema record (damaged, or not an nhdb set)");
            goto cleanup;
        }
        db->neural_m = nhdb_get_le32(p + 8);
        db->pdq_m = nhdb_get_le32(p + 12);
        db->version = version;
        db->tail = version > NHDB_SCHEMA_NOSUM ? NHDB_SUM_BYTES : 0;
        if (db->neural_m < 3 || db->neural_m > 32 || db->pdq_m < 8 || db->pdq_m > 64) {
            st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, path,
                              "bad schema record: substrings neural %u, pdq %u", db->neural_m,
                              db->pdq_m);
            goto cleanup;
        }
        if (version == 1) {
            if (flags & NH_DB_OPEN_READONLY) {
                st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, path,
                                  "schema version 1: open it once for writing to upgrade it to "
                                  "version %u (nhdb upgrade %s)",
                                  NH_DB_SCHEMA_VERSION, path);
                goto cleanup;
            }
            mdb_txn_abort(txn);
            txn = NULL;
            if ((st = upgrade_run(db, upgrade_attempt, "upgrade to schema 2", err)))
                goto cleanup;
            db->version = NHDB_SCHEMA_NOSUM;
            if ((rc = nhdb_txn_begin(db, 0, &txn))) {
                st = nhdb_mdb_error(err, rc, path, "begin transaction");
                goto cleanup;
            }
        }
        if ((st = open_tables(db, txn, 0, err)))
            goto cleanup;
        /* Commit, not abort: table handles opened in an aborted transaction are discarded. */
        rc = mdb_txn_commit(txn);
        txn = NULL;
        if (rc) {
            st = nhdb_mdb_error(err, rc, path, "open tables");
            goto cleanup;
        }
    }
    *out = db;
    db = NULL;
cleanup:
    if (txn)
        mdb_txn_abort(txn);
    if (db) {
        if (db->env)
            mdb_env_close(db->env);
        free(db);
    }
    return st;
}

nh_status nh_db_upgrade(nh_db *db, nh_error *err)
{
    if (db->flags & NH_DB_OPEN_READONLY)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "database opened read-only");
    if (db->in_batch || db->live_readers)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "upgrade with a batch or a reader open");
    if (db->version >= NH_DB_SCHEMA_VERSION)
        return NH_OK;
    nh_status st = upgrade_run(db, add_sums_attempt, "upgrade to schema 3", err);
    if (st == NH_OK) {
        db->version = NH_DB_SCHEMA_VERSION;
        db->tail = NHDB_SUM_BYTES;
    }
    return st;
}

void nh_db_close(nh_db *db)
{
    if (!db)
        return;
    nh_db_batch_abort(db);
    mdb_env_close(db->env);
    free(db->pend);
    free(db->arena);
    free(db->dset);
    free(db->progress_val);
    free(db);
}

/* ---- batches ---- */

nh_status nh_db_batch_begin(nh_db *db, nh_error *err)
{
    if (db->flags & NH_DB_OPEN_READONLY)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "database opened read-only");
    if (db->in_batch)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "a batch is open already");
    db->in_batch = 1;
    db->n_pend = 0;
    db->n_pend_digests = 0;
    db->arena_n = 0;
    db->dset_n = 0;
    if (db->dset)
        memset(db->dset, 0, db->dset_cap * 16);
    db->has_progress = 0;
    return NH_OK;
}

void nh_db_batch_abort(nh_db *db)
{
    if (!db)
        return;
    db->in_batch = 0;
    db->n_pend = 0;
    db->n_pend_digests = 0;
    db->arena_n = 0;
    db->dset_n = 0;
    db->has_progress = 0;
}

size_t nh_db_batch_size(const nh_db *db)
{
    return db->in_batch ? db->n_pend : 0;
}

static int arena_add(nh_db *db, const char *s, size_t *off, size_t *len)
{
    size_t n = s ? strlen(s) : 0;
    if (n > NHDB_STR_MAX)
        return -1;
    if (!db->arena || db->arena_n + n > db->arena_cap) {
        size_t cap = db->arena_cap ? db->arena_cap : 1 << 16;
        while (cap < db->arena_n + n)
            cap *= 2;
        char *na = realloc(db->arena, cap);
        if (!na)
            return -2;
        db->arena = na;
        db->arena_cap = cap;
    }
    memcpy(db->arena + db->arena_n, s ? s : "", n);
    *off = db->arena_n;
    *len = n;
    db->arena_n += n;
    return 0;
}

static size_t dset_slot(const uint8_t d[16], size_t cap)
{
    uint64_t h;
    memcpy(&h, d, 8);
    h ^= h >> 29;
    h *= UINT64_C(0xbf58476d1ce4e5b9);
    return (size_t)(h ^ (h >> 32)) & (cap - 1);
}

static const uint8_t zero16[16];

/* Insert into the batch digest set (all-zero digests are kept out: zero marks empty). */
static int dset_add(nh_db *db, const uint8_t d[16])
{
    if (memcmp(d, zero16, 16) == 0)
        return 0;
    if ((db->dset_n + 1) * 2 > db->dset_cap) {
        size_t cap = db->dset_cap ? db->dset_cap * 2 : 1024;
        uint8_t(*nd)[16] = calloc(cap, 16);
        if (!nd)
            return -1;
        for (size_t i = 0; i < db->dset_cap; i++)
            if (memcmp(db->dset[i], zero16, 16)) {
                size_t s = dset_slot(db->dset[i], cap);
                while (memcmp(nd[s], zero16, 16))
                    s = (s + 1) & (cap - 1);
                memcpy(nd[s], db->dset[i], 16);
            }
        free(db->dset);
        db->dset = nd;
        db->dset_cap = cap;
    }
    size_t s = dset_slot(d, db->dset_cap);
    while (memcmp(db->dset[s], zero16, 16)) {
        if (memcmp(db->dset[s], d, 16) == 0)
            return 0;
        s = (s + 1) & (db->dset_cap - 1);
    }
    memcpy(db->dset[s], d, 16);
    db->dset_n++;
    return 0;
}

static int dset_has(const nh_db *db, const uint8_t d[16])
{
    if (!db->dset_cap)
        return 0;
    size_t s = dset_slot(d, db->dset_cap);
    while (memcmp(db->dset[s], zero16, 16)) {
        if (memcmp(db->dset[s], d, 16) == 0)
            return 1;
        s = (s + 1) & (db->dset_cap - 1);
    }
    return 0;
}

nh_status nh_db_add(nh_db *db, const nh_db_entry *e, nh_error *err)
{
    if (!db->in_batch)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "nh_db_add outside a batch");
    unsigned bits = nh_kind_bits(&e->kind);
    if (!nh_kind_type_bits(e->kind.type) || !e->hash)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "entry without a valid kind or hash");
    if (!nh_kind_bits_valid(e->kind.type, bits) || bits > 8 * NH_DB_HASH_MAX)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "%s hash of %u bits (neural: 8..%u in whole bytes; pdq 256; "
                            "digest 128)",
                            nh_kind_name(e->kind.type), bits, 8 * NH_DB_HASH_MAX);
    if (e->quality < -1 || e->quality > 100)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "quality %d outside 0..100", e->quality);
    if (e->kind.type != NH_KIND_NEURAL && memcmp(e->kind.model, zero16, 8) != 0)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "only neural kinds carry a model fingerprint");
    if (db->n_pend == db->cap_pend) {
        size_t cap = db->cap_pend ? db->cap_pend * 2 : 4096;
        nhdb_pending *np = realloc(db->pend, cap * sizeof *np);
        if (!np)
            return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "batch");
        db->pend = np;
        db->cap_pend = cap;
    }
    nhdb_pending *p = &db->pend[db->n_pend];
    memset(p, 0, sizeof *p);
    p->kind = e->kind;
    p->kind.bits = bits; /* explicit width: kinds compare by nh_kind_equal */
    memcpy(p->hash, e->hash, bits / 8);
    if (e->digest) {
        memcpy(p->digest, e->digest, 16);
        p->has_digest = 1;
    }
    p->quality = e->quality;
    p->added = e->added ? e->added : (int64_t)time(NULL);
    size_t save = db->arena_n;
    int rc = arena_add(db, e->source, &p->src_off, &p->src_len);
    if (!rc)
        rc = arena_add(db, e->label, &p->lab_off, &p->lab_len);
    if (!rc)
        rc = arena_add(db, e->note, &p->note_off, &p->note_len);
    if (rc) {
        db->arena_n = save;
        return rc == -1 ? nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                                       "string longer than %u bytes", NHDB_STR_MAX)
                        : nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "batch");
    }
    if ((p->has_digest && dset_add(db, p->digest)) ||
        (e->kind.type == NH_KIND_DIGEST && dset_add(db, p->hash))) {
        db->arena_n = save;
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "batch");
    }
    if (p->has_digest || e->kind.type == NH_KIND_DIGEST)
        db->n_pend_digests++;
    db->n_pend++;
    return NH_OK;
}

nh_status nh_db_batch_set_progress(nh_db *db, const char *job, const void *value, size_t n,
                                   nh_error *err)
{
    if (!db->in_batch)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path, "no open batch");
    if (!job || strlen(job) >= sizeof db->progress_job || n > 4096)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path,
                            "progress job name or value too long");
    uint8_t *nv = realloc(db->progress_val, n + NHDB_SUM_BYTES); /* room for the checksum */
    if (!nv)
        return nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "progress");
    db->progress_val = nv;
    if (n)
        memcpy(nv, value, n);
    db->progress_n = n;
    snprintf(db->progress_job, sizeof db->progress_job, "%s", job);
    db->has_progress = 1;
    return NH_OK;
}

static size_t progress_key(uint8_t *buf, const char *job)
{
    size_t n = strlen(job);
    buf[0] = 'p';
    memcpy(buf + 1, job, n);
    return n + 1;
}

nh_status nh_db_get_progress(nh_db *db, const char *job, void *buf, size_t cap, size_t *n,
                             nh_error *err)
{
    nh_status st = NH_OK;
    MDB_txn *txn = NULL;
    uint8_t kb[402];
    if (!job || strlen(job) > 400)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path, "job name");
    int rc = nhdb_txn_begin(db, MDB_RDONLY, &txn);
    if (rc)
        return nhdb_mdb_error(err, rc, db->path, "begin read");
    MDB_val k = {progress_key(kb, job), kb}, v;
    rc = mdb_get(txn, db->dbi_meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        st = NH_ERR_NOT_FOUND;
        goto cleanup;
    }
    if (rc) {
        st = nhdb_mdb_error(err, rc, db->path, "read progress");
        goto cleanup;
    }
    if (db->tail && !nhdb_sum_ok(&k, &v)) {
        st = nh_error_set(err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, db->path,
                          "the progress record of %s fails its checksum", job);
        goto cleanup;
    }
    size_t pn = v.mv_size - db->tail;
    memcpy(buf, v.mv_data, pn < cap ? pn : cap);
    *n = pn;
cleanup:
    mdb_txn_abort(txn);
    return st;
}

/* ---- commit ---- */

typedef struct digest_item {
    uint8_t d[16];
    uint64_t id;
} digest_item;

static int digest_item_cmp(const void *a, const void *b)
{
    const digest_item *x = a, *y = b;
    int c = memcmp(x->d, y->d, 16);
    if (c)
        return c;
    return x->id < y->id ? -1 : x->id > y->id;
}

static nhdb_kind_info *kind_find(nhdb_kind_info *k, size_t n, const nh_kind *kind)
{
    for (size_t i = 0; i < n; i++)
        if (nh_kind_equal(&k[i].kind, kind))
            return &k[i];
    return NULL;
}

/* Last key of a table, or mv_data NULL when empty (copied into buf). */
static int table_last(MDB_txn *txn, MDB_dbi dbi, MDB_val *out, uint8_t *buf, size_t cap)
{
    MDB_cursor *c;
    MDB_val k, v;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return rc;
    rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    out->mv_data = NULL;
    out->mv_size = 0;
    if (rc == 0 && k.mv_size <= cap) {
        memcpy(buf, k.mv_data, k.mv_size);
        out->mv_data = buf;
        out->mv_size = k.mv_size;
    } else if (rc == 0) {
        out->mv_data = buf; /* longer than any key we write: never append */
        memset(buf, 0xff, cap);
        out->mv_size = cap;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Are entry `id` in the database and pending p the same (hash, source)? */
static int same_entry_db(MDB_txn *txn, nh_db *db, uint64_t id, const nhdb_pending *p, unsigned hb,
                         int *same)
{
    uint8_t kb[8];
    nhdb_put_be64(kb, id);
    MDB_val k = {8, kb}, v;
    int rc = mdb_get(txn, db->dbi_entries, &k, &v);
    if (rc)
        return rc;
    nh_db_record r;
    if (nhdb_rec_decode(&k, &v, db->tail, &r))
        return MDB_CORRUPTED;
    *same = memcmp(r.hash, p->hash, hb) == 0 && strlen(r.source) == p->src_len &&
            memcmp(r.source, db->arena + p->src_off, p->src_len) == 0;
    return 0;
}

typedef struct commit_ctx {
    uint64_t *dk, *tmp; /* n + 1 each: the batch's dedupe order; sort scratch */
    uint64_t *ids;     /* per pending entry: assigned id, or UINT64_MAX when skipped */
    uint32_t *kind_of; /* per pending entry: index into kinds */
    uint32_t *keyhi;   /* per pending entry: top 32 bits of its dedupe key */
    uint32_t *keylo;   /* and the low 32 */
    uint8_t *chunk_buf;
    digest_item *digs;
} commit_ctx;

#define CHECK(expr, what)                                                                          \
    do {                                                                                           \
        rc = (expr);                                                                               \
        if (rc) {                                                                                  \
            where = what;                                                                          \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* NHDB_PROFILE=1: each commit prints the time its phases took to stderr. */
typedef struct commit_prof {
    int on;
    double t;
    const char *phase[16];
    double sec[16];
    size_t n;
} commit_prof;

/* Charge the time since the last mark to phase (a string literal). */
static void prof_mark(commit_prof *pf, const char *phase)
{
    if (!pf->on)
        return;
    double now = nh_time_now();
    size_t i = 0;
    while (i < pf->n && strcmp(pf->phase[i], phase) != 0)
        i++;
    if (i == pf->n && pf->n < 16)
        pf->phase[pf->n++] = phase;
    if (i < pf->n)
        pf->sec[i] += now - pf->t;
    pf->t = now;
}

/* One attempt at writing the batch. Returns an MDB rc (MDB_MAP_FULL means grow and retry) or
 * -1 with err filled for other failures. */
static int commit_attempt(nh_db *db, commit_ctx *cc, uint64_t *added, uint64_t *skipped,
                          nh_error *err)
{
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    nhdb_kind_info *kinds = NULL;
    size_t nk = 0;
    const char *where = "";
    int rc;
    size_t n = db->n_pend;
    uint64_t n_added = 0, n_skipped = 0;
    commit_prof pf = {.on = getenv("NHDB_PROFILE") != NULL};
    if (pf.on)
        pf.t = nh_time_now();

    CHECK(nhdb_txn_begin(db, 0, &txn), "begin write");
    if (nhdb_kinds_load(db, txn, &kinds, &nk, err)) {
        mdb_txn_abort(txn);
        return -1;
    }
    /* Resolve kinds, creating new ones. */
    size_t last_k = SIZE_MAX; /* batches are mostly of one kind */
    for (size_t i = 0; i < n; i++) {
        const nh_kind *pk = &db->pend[i].kind;
        if (last_k != SIZE_MAX && nh_kind_equal(&kinds[last_k].kind, pk)) {
            cc->kind_of[i] = (uint32_t)last_k;
            continue;
        }
        nhdb_kind_info *k = kind_find(kinds, nk, pk);
        if (!k) {
            uint32_t id = 1;
            for (size_t j = 0; j < nk; j++)
                if (kinds[j].id >= id)
                    id = kinds[j].id + 1;
            nhdb_kind_info *nkinds = realloc(kinds, (nk + 1) * sizeof *kinds);
            if (!nkinds || id > NHDB_KIND_MAX) {
                free(nkinds ? nkinds : kinds);
                mdb_txn_abort(txn);
                nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "kinds");
                return -1;
            }
            kinds = nkinds;
            k = &kinds[nk++];
            memset(k, 0, sizeof *k);
            k->id = id;
            k->kind = db->pend[i].kind;
            k->bits = nh_kind_bits(&k->kind);
            k->kind.bits = k->bits;
            k->hb = k->bits / 8;
            k->m = nhdb_default_m(db, &k->kind);
            k->dirty = 1;
        }
        cc->kind_of[i] = (uint32_t)(k - kinds);
        last_k = cc->kind_of[i];
    }

    prof_mark(&pf, "kinds");
    /* Dedupe: the batch sorted by the top 32 bits of each entry's dedupe key (stably: batch
     * order within a value). An entry alone with its value in the batch and absent from its
     * kind's dedupe runs (mapped now, before this transaction writes anything, so the pointers
     * hold) is new; otherwise it is compared with the earlier entries of its group that have
     * the same kind and full key, and with the stored entries the runs name. */
    uint64_t *dk = cc->dk; /* top32 << 32 | batch index */
    for (size_t i = 0; i < n; i++) {
        const nhdb_pending *p = &db->pend[i];
        const nhdb_kind_info *k = &kinds[cc->kind_of[i]];
        uint64_t h = nhdb_dedupe_hash(p->hash, k->hb, db->arena + p->src_off, p->src_len);
        cc->keyhi[i] = (uint32_t)(h >> 32);
        cc->keylo[i] = (uint32_t)h;
        dk[i] = (h >> 32) << 32 | i;
    }
    nhdb_sort_bits(dk, cc->tmp, n, 32, 32);
    prof_mark(&pf, "dedupe-sort");
    for (size_t i = 0; i < n; i++)
        cc->ids[i] = 0;
    {
        nhdb_run_view **dv = calloc(nk + 1, sizeof *dv);
        size_t *dn = calloc(nk + 1, sizeof *dn);
        uint64_t cand0[64], *cand = cand0;
        size_t cand_cap = sizeof cand0 / sizeof cand0[0];
        rc = dv && dn ? 0 : -1;
        for (size_t ki = 0; ki < nk && !rc; ki++)
            if (kinds[ki].count)
                rc = nhdb_runs_map(txn, db->dbi_mih, kinds[ki].id, NHDB_DEDUPE_S, NHDB_DEDUPE_LEN,
                                   db->tail, &dv[ki], &dn[ki]);
        for (size_t g = 0; g < n && !rc;) {
            uint32_t top = (uint32_t)(dk[g] >> 32);
            size_t e = g + 1;
            while (e < n && (uint32_t)(dk[e] >> 32) == top)
                e++;
            for (size_t j = g; j < e && !rc; j++) {
                size_t pi = (size_t)(uint32_t)dk[j], ki = cc->kind_of[pi];
                size_t nc = dn[ki] ? nhdb_runs_lookup(dv[ki], dn[ki], top, cand, cand_cap) : 0;
                if (nc == SIZE_MAX) {
                    rc = MDB_CORRUPTED;
                    break;
                }
                if (nc > cand_cap) { /* many stored keys share these 32 bits: rare, or contrived */
                    uint64_t *nb = realloc(cand == cand0 ? NULL : cand, nc * sizeof *nb);
                    if (!nb) {
                        rc = -1;
                        break;
                    }
                    cand = nb;
                    cand_cap = nc;
                    nhdb_runs_lookup(dv[ki], dn[ki], top, cand, cand_cap);
                }
                if (e == g + 1 && nc == 0)
                    break; /* alone in the batch and new: kept (ids[pi] stays 0) */
                const nhdb_pending *p = &db->pend[pi];
                unsigned hb = kinds[ki].hb;
                int dup = 0;
                for (size_t q = g; q < j && !dup; q++) {
                    size_t qi = (size_t)(uint32_t)dk[q];
                    const nhdb_pending *o = &db->pend[qi];
                    if (cc->ids[qi] == 0 && cc->kind_of[qi] == ki && cc->keylo[qi] == cc->keylo[pi] &&
                        memcmp(o->hash, p->hash, hb) == 0 && o->src_len == p->src_len &&
                        memcmp(db->arena + o->src_off, db->arena + p->src_off, p->src_len) == 0)
                        dup = 1;
                }
                for (size_t c = 0; c < nc && !dup && !rc; c++)
                    rc = same_entry_db(txn, db, (uint64_t)kinds[ki].id << 40 | cand[c], p, hb, &dup);
                cc->ids[pi] = dup ? UINT64_MAX : 0;
            }
            g = e;
        }
        for (size_t ki = 0; ki < nk && dv; ki++)
            if (dv[ki])
                nhdb_runs_unmap(dv[ki], dn[ki]);
        if (cand != cand0)
            free(cand);
        free(dv);
        free(dn);
        if (rc == -1) {
            nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "dedupe");
            mdb_txn_abort(txn);
            free(kinds);
            return -1;
        }
        if (rc) {
            where = "dedupe lookup";
            goto fail;
        }
    }
    prof_mark(&pf, "dedupe-lookup");
    /* Assign ids in batch order. */
    for (size_t i = 0; i < n; i++) {
        if (cc->ids[i] == UINT64_MAX) {
            n_skipped++;
            continue;
        }
        nhdb_kind_info *k = &kinds[cc->kind_of[i]];
        cc->ids[i] = (uint64_t)k->id << 40 | k->count++;
        k->dirty = 1;
        n_added++;
    }
    /* Entries, in id order: batch order is id order within a kind. */
    {
        CHECK(mdb_cursor_open(txn, db->dbi_entries, &cur), "entries cursor");
        uint8_t lastbuf[8];
        MDB_val last;
        CHECK(table_last(txn, db->dbi_entries, &last, lastbuf, sizeof lastbuf), "entries last");
        int app = 1;
        for (size_t i = 0; i < n; i++) {
            if (cc->ids[i] == UINT64_MAX)
                continue;
            const nhdb_pending *p = &db->pend[i];
            const nhdb_kind_info *k = &kinds[cc->kind_of[i]];
            uint8_t kb[8];
            nhdb_put_be64(kb, cc->ids[i]);
            MDB_val key = {8, kb};
            MDB_val v = {nhdb_rec_size(k->hb, p->src_len, p->lab_len, p->note_len) + db->tail,
                         NULL};
            int flags = MDB_RESERVE;
            if (app && (!last.mv_data || memcmp(kb, last.mv_data, 8) > 0))
                flags |= MDB_APPEND;
            else
                app = 0;
            rc = mdb_cursor_put(cur, &key, &v, (unsigned)flags);
            if (rc == MDB_KEYEXIST && (flags & MDB_APPEND)) {
                app = 0;
                rc = mdb_cursor_put(cur, &key, &v, MDB_RESERVE);
            }
            CHECK(rc, "entry put");
            rec_encode(v.mv_data, k->id, k->hb, p, db->arena);
            if (db->tail)
                nhdb_seal(&key, &v);
            if (app) {
                memcpy(lastbuf, kb, 8);
                last.mv_data = lastbuf;
                last.mv_size = 8;
            }
        }
        mdb_cursor_close(cur);
        cur = NULL;
    }

    prof_mark(&pf, "entries");
    /* Packed arrays: append each kind's new hashes to its chunks. */
    for (size_t ki = 0; ki < nk; ki++) {
        nhdb_kind_info *k = &kinds[ki];
        uint64_t first = UINT64_MAX, last_ord = 0;
        for (size_t i = 0; i < n; i++)
            if (cc->ids[i] != UINT64_MAX && cc->kind_of[i] == ki) {
                uint64_t o = cc->ids[i] & NHDB_ORD_MASK;
                if (first == UINT64_MAX)
                    first = o;
                last_ord = o;
            }
        if (first == UINT64_MAX)
            continue;
        size_t scan = 0;
        for (uint64_t c = first >> NHDB_CHUNK_SHIFT; c <= last_ord >> NHDB_CHUNK_SHIFT; c++) {
            uint64_t c0 = c << NHDB_CHUNK_SHIFT;
            uint64_t have = first > c0 ? first - c0 : 0; /* hashes already in the chunk */
            uint64_t end = last_ord + 1 < c0 + NHDB_CHUNK ? last_ord + 1 - c0 : NHDB_CHUNK;
            uint8_t kb[8];
            nhdb_put_be32(kb, k->id);
            nhdb_put_be32(kb + 4, (uint32_t)c);
            MDB_val key = {8, kb}, v;
            if (have) {
                CHECK(mdb_get(txn, db->dbi_packed, &key, &v), "packed get");
                /* a damaged chunk is refused, not resealed as if it were good */
                if (v.mv_size != have * k->hb + db->tail || (db->tail && !nhdb_sum_ok(&key, &v))) {
                    rc = MDB_CORRUPTED;
                    where = "packed chunk size or checksum";
                    goto fail;
                }
                memcpy(cc->chunk_buf, v.mv_data, have * k->hb);
            }
            for (uint64_t o = c0 + have; o < c0 + end; o++) {
                while (cc->ids[scan] == UINT64_MAX || cc->kind_of[scan] != ki)
                    scan++;
                memcpy(cc->chunk_buf + (o - c0) * k->hb, db->pend[scan].hash, k->hb);
                scan++;
            }
            v.mv_size = end * k->hb + db->tail;
            v.mv_data = NULL;
            CHECK(mdb_put(txn, db->dbi_packed, &key, &v, MDB_RESERVE), "packed put");
            memcpy(v.mv_data, cc->chunk_buf, end * k->hb);
            if (db->tail)
                nhdb_seal(&key, &v);
        }
    }

    prof_mark(&pf, "packed");

    /* MIH and dedupe runs: per kind, the batch's postings of each substring, and of the top 32
     * bits of each dedupe key (list m), sorted by value (stably: ordinal order within a value)
     * and added as runs; then the occupancy bitmaps. */
    for (size_t ki = 0; ki < nk; ki++) {
        const nhdb_kind_info *k = &kinds[ki];
        size_t na = 0;
        uint64_t first = 0;
        for (size_t i = 0; i < n; i++)
            if (cc->ids[i] != UINT64_MAX && cc->kind_of[i] == ki) {
                if (!na)
                    first = cc->ids[i] & NHDB_ORD_MASK;
                na++;
            }
        if (!na)
            continue;
        /* One pass over the batch extracts every list's values: all[s * na + j] */
        uint64_t *all = malloc((size_t)(k->m + 1) * na * sizeof *all), *tmp = cc->tmp;
        if (!all) {
            nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "MIH postings");
            mdb_txn_abort(txn);
            free(kinds);
            return -1;
        }
        unsigned st0[65], sl[65];
        for (unsigned s = 0; s < k->m; s++) {
            st0[s] = nhdb_sub_start(k->bits, k->m, s);
            sl[s] = nhdb_sub_len(k->bits, k->m, s);
        }
        sl[k->m] = NHDB_DEDUPE_LEN;
        /* When the whole batch is this kind's and nothing was skipped, batch index = ordinal -
         * first, so the dedupe order sorted above is already this kind's dedupe list. */
        int dedupe_sorted = na == n;
        {
            size_t j = 0;
            uint64_t *dd = dedupe_sorted ? NULL : all + (size_t)k->m * na;
            for (size_t i = 0; i < n; i++)
                if (cc->ids[i] != UINT64_MAX && cc->kind_of[i] == ki) {
                    /* the hash as big-endian 64-bit words; substring s spans at most two */
                    const uint8_t *h = db->pend[i].hash;
                    uint64_t w[NH_DB_HASH_MAX / 8 + 1];
                    unsigned nw = (k->hb + 7) / 8;
                    uint8_t pad[8] = {0};
                    for (unsigned q = 0; q < nw; q++) {
                        if (8 * q + 8 <= k->hb) {
                            w[q] = nhdb_get_be64(h + 8 * q);
                        } else { /* a width that is not a multiple of 64 bits */
                            memcpy(pad, h + 8 * q, k->hb - 8 * q);
                            w[q] = nhdb_get_be64(pad);
                        }
                    }
                    w[nw] = 0;
                    for (unsigned s = 0; s < k->m; s++) {
                        unsigned wi = st0[s] >> 6, off = st0[s] & 63;
                        uint64_t x = off ? w[wi] << off | w[wi + 1] >> (64 - off) : w[wi];
                        all[s * na + j] = (x >> (64 - sl[s])) << 32 | j;
                    }
                    if (dd)
                        dd[j] = (uint64_t)cc->keyhi[i] << 32 | j;
                    j++;
                }
        }
        prof_mark(&pf, "mih-extract");
        if (dedupe_sorted)
            memcpy(all + (size_t)k->m * na, cc->dk, n * sizeof *all);
        nhdb_sort_many(all, tmp, na, k->m + !dedupe_sorted, 32, sl);
        prof_mark(&pf, "mih-sort");
        for (unsigned s = 0; s <= k->m; s++) {
            unsigned len = sl[s];
            uint64_t *a = all + s * na;
            rc = nhdb_runs_add(txn, db->dbi_mih, k->id, s < k->m ? s : NHDB_DEDUPE_S, len,
                               db->tail, a, na, first);
            if (rc == -1) {
                nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "MIH run");
                free(all);
                mdb_txn_abort(txn);
                free(kinds);
                return -1;
            }
            if (rc) {
                free(all);
                where = "mih run";
                goto fail;
            }
            prof_mark(&pf, "runs");
            /* Occupancy bitmaps: the values are sorted, so each chunk is rewritten once. */
            if (s == k->m || !nhdb_occ_eligible(len))
                continue;
            for (size_t q = 0; q < na;) {
                uint32_t chunk = (uint32_t)(a[q] >> 32) >> NHDB_OCC_SHIFT;
                uint8_t kb[9];
                nhdb_occ_key(kb, k->id, s, chunk);
                MDB_val key = {9, kb}, v;
                rc = mdb_get(txn, db->dbi_occ, &key, &v);
                if (rc == 0 && v.mv_size == NHDB_OCC_BYTES + db->tail &&
                    (!db->tail || nhdb_sum_ok(&key, &v)))
                    memcpy(cc->chunk_buf, v.mv_data, NHDB_OCC_BYTES);
                else if (rc == MDB_NOTFOUND)
                    memset(cc->chunk_buf, 0, NHDB_OCC_BYTES);
                else {
                    if (rc == 0)
                        rc = MDB_CORRUPTED;
                    where = "occupancy get";
                    free(all);
                    goto fail;
                }
                for (; q < na && (uint32_t)(a[q] >> 32) >> NHDB_OCC_SHIFT == chunk; q++) {
                    uint32_t bit = (uint32_t)(a[q] >> 32) & ((1u << NHDB_OCC_SHIFT) - 1);
                    cc->chunk_buf[bit >> 3] |= (uint8_t)(0x80 >> (bit & 7));
                }
                v.mv_size = NHDB_OCC_BYTES + db->tail;
                v.mv_data = NULL;
                rc = mdb_put(txn, db->dbi_occ, &key, &v, MDB_RESERVE);
                if (rc) {
                    free(all);
                    where = "occupancy put";
                    goto fail;
                }
                memcpy(v.mv_data, cc->chunk_buf, NHDB_OCC_BYTES);
                if (db->tail)
                    nhdb_seal(&key, &v);
            }
            prof_mark(&pf, "occupancy");
        }
        free(all);
    }

    /* Digest rows: the digest of any entry, and the hash of digest-kind entries. */
    if (db->n_pend_digests) {
        size_t nd = 0;
        for (size_t i = 0; i < n; i++) {
            if (cc->ids[i] == UINT64_MAX)
                continue;
            const nhdb_pending *p = &db->pend[i];
            if (p->has_digest) {
                memcpy(cc->digs[nd].d, p->digest, 16);
                cc->digs[nd++].id = cc->ids[i];
            }
            if (p->kind.type == NH_KIND_DIGEST &&
                !(p->has_digest && memcmp(p->digest, p->hash, 16) == 0)) {
                memcpy(cc->digs[nd].d, p->hash, 16);
                cc->digs[nd++].id = cc->ids[i];
            }
        }
        qsort(cc->digs, nd, sizeof *cc->digs, digest_item_cmp);
        CHECK(mdb_cursor_open(txn, db->dbi_digest, &cur), "digest cursor");
        for (size_t j = 0; j < nd; j++) {
            uint8_t idb[8];
            nhdb_put_be64(idb, cc->digs[j].id);
            MDB_val key = {16, cc->digs[j].d}, v = {8, idb};
            CHECK(mdb_cursor_put(cur, &key, &v, 0), "digest put");
        }
        mdb_cursor_close(cur);
        cur = NULL;
    }

    prof_mark(&pf, "digest");
    /* Kind records (the per-kind counts) and the progress record. */
    for (size_t ki = 0; ki < nk; ki++) {
        if (!kinds[ki].dirty)
            continue;
        uint8_t kb[5], rec[NHDB_KIND_REC_SIZE + NHDB_SUM_BYTES];
        kb[0] = 'k';
        nhdb_put_be32(kb + 1, kinds[ki].id);
        nhdb_kind_encode(&kinds[ki], rec);
        MDB_val key = {5, kb}, v = {NHDB_KIND_REC_SIZE + db->tail, rec};
        if (db->tail)
            nhdb_seal(&key, &v);
        CHECK(mdb_put(txn, db->dbi_meta, &key, &v, 0), "kind put");
    }
    if (db->has_progress) {
        uint8_t kb[402];
        MDB_val key = {progress_key(kb, db->progress_job), kb};
        if (db->progress_n) {
            MDB_val v = {db->progress_n + db->tail, db->progress_val};
            if (db->tail)
                nhdb_seal(&key, &v);
            CHECK(mdb_put(txn, db->dbi_meta, &key, &v, 0), "progress put");
        } else {
            rc = mdb_del(txn, db->dbi_meta, &key, NULL);
            if (rc && rc != MDB_NOTFOUND) {
                where = "progress delete";
                goto fail;
            }
        }
    }
    prof_mark(&pf, "meta");
    rc = mdb_txn_commit(txn);
    txn = NULL;
    if (rc) {
        where = "commit";
        goto fail;
    }
    prof_mark(&pf, "commit");
    if (pf.on) {
        fprintf(stderr, "nhdb profile: %zu entries:", n);
        for (size_t i = 0; i < pf.n; i++)
            fprintf(stderr, " %s %.3f", pf.phase[i], pf.sec[i]);
        fprintf(stderr, "\n");
    }
    free(kinds);
    *added = n_added;
    *skipped = n_skipped;
    return 0;
fail:
    if (cur)
        mdb_cursor_close(cur);
    if (txn)
        mdb_txn_abort(txn);
    free(kinds);
    if (rc != MDB_MAP_FULL)
        nhdb_mdb_error(err, rc, db->path, where);
    return rc;
}

nh_status nh_db_batch_commit(nh_db *db, uint64_t *added, uint64_t *skipped, nh_error *err)
{
    nh_status st = NH_OK;
    commit_ctx cc = {0};
    uint64_t a = 0, s = 0;
    if (!db->in_batch)
        return nh_error_set(err, NH_ERR_INVALID, NH_FOREIGN_NONE, 0, db->path, "no open batch");
    size_t n = db->n_pend;
    cc.dk = malloc((n + 1) * sizeof *cc.dk);
    cc.tmp = malloc((n + 1) * sizeof *cc.tmp);
    cc.ids = malloc((n + 1) * sizeof *cc.ids);
    cc.kind_of = malloc((n + 1) * sizeof *cc.kind_of);
    cc.keyhi = malloc((n + 1) * sizeof *cc.keyhi);
    cc.keylo = malloc((n + 1) * sizeof *cc.keylo);
    cc.chunk_buf = malloc((size_t)NHDB_CHUNK * NH_DB_HASH_MAX);
    cc.digs = malloc((2 * n + 1) * sizeof *cc.digs);
    if (!cc.dk || !cc.tmp || !cc.ids || !cc.kind_of || !cc.keyhi || !cc.keylo || !cc.chunk_buf || !cc.digs) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "commit buffers");
        goto cleanup;
    }
    /* Grow the map ahead of a large batch rather than fail and retry it. */
    if (!db->live_readers && n) {
        size_t est = 0;
        for (size_t i = 0; i < n; i++) {
            const nhdb_pending *p = &db->pend[i];
            unsigned hb = nh_kind_bits(&p->kind) / 8;
            est += nhdb_rec_size(hb, p->src_len, p->lab_len, p->note_len) + 48 + hb +
                   16 * ((size_t)nhdb_default_m(db, &p->kind) + 1) + (p->has_digest ? 40 : 0);
        }
        est *= 2; /* half-full pages after splits, copy-on-write */
        /* A batch may merge every stored run of its kinds: room for all their postings again. */
        MDB_txn *rt;
        nhdb_kind_info *ks = NULL;
        size_t nks = 0;
        if (nhdb_txn_begin(db, MDB_RDONLY, &rt) == 0) {
            if (nhdb_kinds_load(db, rt, &ks, &nks, NULL) == NH_OK)
                for (size_t ki = 0; ki < nks; ki++)
                    for (size_t i = 0; i < n; i++)
                        if (nh_kind_equal(&db->pend[i].kind, &ks[ki].kind)) {
                            est += (size_t)(ks[ki].m + 1) * 8 * ks[ki].count + (1u << 20);
                            break;
                        }
            free(ks);
            mdb_txn_abort(rt);
        }
        MDB_envinfo info;
        MDB_stat es;
        mdb_env_info(db->env, &info);
        mdb_env_stat(db->env, &es);
        size_t used = (size_t)(info.me_last_pgno + 1) * es.ms_psize;
        if (used + est > info.me_mapsize) {
            size_t want = info.me_mapsize;
            while (want < used + est)
                want += want < ((size_t)1 << 30) ? want : ((size_t)1 << 30);
            int rc = mdb_env_set_mapsize(db->env, want);
            if (rc) {
                st = nhdb_mdb_error(err, rc, db->path, "grow map");
                goto cleanup;
            }
        }
    }
    for (;;) {
        int rc = commit_attempt(db, &cc, &a, &s, err);
        if (rc == 0)
            break;
        if (rc != MDB_MAP_FULL) {
            st = err ? err->status : NH_ERR_DB;
            if (st == NH_OK)
                st = NH_ERR_DB;
            goto cleanup;
        }
        if (db->live_readers) {
            st = nh_error_set(err, NH_ERR_DB, NH_FOREIGN_MDB, rc, db->path,
                              "map full and a reader of this process is open; close readers "
                              "before committing");
            goto cleanup;
        }
        MDB_envinfo info;
        mdb_env_info(db->env, &info);
        size_t grow = info.me_mapsize < ((size_t)1 << 30) ? info.me_mapsize : ((size_t)1 << 30);
        rc = mdb_env_set_mapsize(db->env, info.me_mapsize + (grow > 0 ? grow : 1 << 20));
        if (rc) {
            st = nhdb_mdb_error(err, rc, db->path, "grow map");
            goto cleanup;
        }
    }
    if (added)
        *added = a;
    if (skipped)
        *skipped = s;
cleanup:
    free(cc.dk);
    free(cc.tmp);
    free(cc.ids);
    free(cc.kind_of);
    free(cc.keyhi);
    free(cc.keylo);
    free(cc.chunk_buf);
    free(cc.digs);
    nh_db_batch_abort(db);
    return st;
}

nh_status nh_db_has_digest(nh_db *db, const uint8_t digest[16], int *present, nh_error *err)
{
    if (db->in_batch && dset_has(db, digest)) {
        *present = 1;
        return NH_OK;
    }
    MDB_txn *txn = NULL;
    int rc = nhdb_txn_begin(db, MDB_RDONLY, &txn);
    if (rc)
        return nhdb_mdb_error(err, rc, db->path, "begin read");
    MDB_val k = {16, (void *)digest}, v;
    rc = mdb_get(txn, db->dbi_digest, &k, &v);
    mdb_txn_abort(txn);
    if (rc && rc != MDB_NOTFOUND)
        return nhdb_mdb_error(err, rc, db->path, "digest lookup");
    *present = rc == 0;
    return NH_OK;
}

/* ---- stats ---- */

static uint64_t table_rows(MDB_txn *txn, MDB_dbi dbi)
{
    MDB_stat s;
    return mdb_stat(txn, dbi, &s) ? 0 : s.ms_entries;
}

nh_status nh_db_stats_get(nh_db *db, nh_db_stats *out, nh_error *err)
{
    nh_status st = NH_OK;
    MDB_txn *txn = NULL;
    nhdb_kind_info *kinds = NULL;
    size_t nk = 0;
    int rc = nhdb_txn_begin(db, MDB_RDONLY, &txn);
    if (rc)
        return nhdb_mdb_error(err, rc, db->path, "begin read");
    if ((st = nhdb_kinds_load(db, txn, &kinds, &nk, err)))
        goto cleanup;
    memset(out, 0, sizeof *out);
    out->schema_version = db->version;
    out->n_kinds = nk;
    for (size_t i = 0; i < nk; i++) {
        out->entries += kinds[i].count;
        if (i < sizeof out->kinds / sizeof out->kinds[0]) {
            nh_db_kind_stats *k = &out->kinds[i];
            k->kind = kinds[i].kind;
            k->kind_id = kinds[i].id;
            k->bits = kinds[i].bits;
            k->substrings = kinds[i].m;
            k->count = kinds[i].count;
        }
    }
    MDB_envinfo info;
    MDB_stat es;
    mdb_env_info(db->env, &info);
    mdb_env_stat(db->env, &es);
    out->mapsize = info.me_mapsize;
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * es.ms_psize;
    out->digests = table_rows(txn, db->dbi_digest);
    for (size_t i = 0; i < nk; i++)
        for (unsigned sub = 0; sub <= kinds[i].m; sub++) {
            nhdb_run_meta *rm;
            size_t nr;
            unsigned sid = sub < kinds[i].m ? sub : NHDB_DEDUPE_S;
            if ((rc = nhdb_runs_list(txn, db->dbi_mih, kinds[i].id, sid, &rm, &nr))) {
                st = rc == -1 ? nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "stats")
                              : nhdb_mdb_error(err, rc, db->path, "MIH runs");
                goto cleanup;
            }
            if (sub == kinds[i].m)
                out->dedupe_runs += nr;
            else
                out->mih_runs += nr;
            for (size_t r = 0; r < nr && sub < kinds[i].m; r++)
                out->mih_rows += rm[r].n;
            free(rm);
        }
cleanup:
    free(kinds);
    mdb_txn_abort(txn);
    return st;
}

/* ---- verify ---- */

typedef struct verify_state {
    nh_db *db;
    nh_error *err;
    uint64_t problems;
} verify_state;

static void problem(verify_state *vs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void problem(verify_state *vs, const char *fmt, ...)
{
    if (vs->problems++ == 0 && vs->err) {
        char msg[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        nh_error_set(vs->err, NH_ERR_FORMAT, NH_FOREIGN_NONE, 0, vs->db->path, "%s", msg);
    }
}

static int has_pair(MDB_cursor *c, const void *key, size_t kl, uint64_t id)
{
    uint8_t idb[8];
    nhdb_put_be64(idb, id);
    MDB_val k = {kl, (void *)key}, v = {8, idb};
    return mdb_cursor_get(c, &k, &v, MDB_GET_BOTH) == 0;
}

/* Every entry of a kind has exactly one posting per substring, with the right value, in
 * well-formed runs, no run row is stray, and the occupancy bitmaps hold exactly the values
 * present. Problems go to vs; returns an MDB rc or -1 (memory) for failures to read. */
static int verify_mih(nh_db *db, MDB_txn *txn, const nhdb_kind_info *kinds, size_t nk,
                      uint32_t *const *dtop, verify_state *vs)
{
    uint64_t want_rows = 0, want_bits = 0, bits = 0;
    int rc = 0;
    for (size_t ki = 0; ki < nk && !rc; ki++) {
        const nhdb_kind_info *k = &kinds[ki];
        uint32_t kid = k->id;
        size_t nc = (size_t)((k->count + NHDB_CHUNK - 1) >> NHDB_CHUNK_SHIFT);
        const uint8_t **chunks = calloc(nc + 1, sizeof *chunks);
        uint8_t *seen = calloc((size_t)(k->count / 8 + 1), 1);
        if (!chunks || !seen) {
            free(chunks);
            free(seen);
            return -1;
        }
        for (size_t c = 0; c < nc; c++) {
            uint8_t kb[8];
            nhdb_put_be32(kb, kid);
            nhdb_put_be32(kb + 4, (uint32_t)c);
            MDB_val key = {8, kb}, v;
            uint64_t want = k->count - ((uint64_t)c << NHDB_CHUNK_SHIFT);
            if (mdb_get(txn, db->dbi_packed, &key, &v) == 0 &&
                v.mv_size == (want > NHDB_CHUNK ? NHDB_CHUNK : want) * k->hb + db->tail)
                chunks[c] = v.mv_data;
        }
        /* lists 0..m-1: the substrings; list m: the dedupe keys' top 32 bits */
        for (unsigned s = 0; s <= k->m && !rc; s++) {
            int ded = s == k->m;
            unsigned sid = ded ? NHDB_DEDUPE_S : s;
            unsigned st0 = ded ? 0 : nhdb_sub_start(k->bits, k->m, s);
            unsigned len = ded ? NHDB_DEDUPE_LEN : nhdb_sub_len(k->bits, k->m, s);
            const char *what = ded ? "dedupe" : "MIH";
            nhdb_run_view *runs = NULL;
            size_t nr = 0;
            rc = nhdb_runs_map(txn, db->dbi_mih, kid, sid, len, db->tail, &runs, &nr);
            if (rc == MDB_CORRUPTED) {
                problem(vs, "kind %u: %s runs of list %u are damaged (a header, directory or "
                        "part is missing or has the wrong size)", kid, what, s);
                rc = 0;
                continue;
            }
            if (rc)
                break;
            int want_occ = !ded && nhdb_occ_eligible(len);
            uint8_t *occ = want_occ ? calloc((size_t)1 << (len - 3), 1) : NULL;
            if (want_occ && !occ) {
                nhdb_runs_unmap(runs, nr);
                rc = -1;
                break;
            }
            memset(seen, 0, (size_t)(k->count / 8 + 1));
            uint64_t total = 0;
            for (size_t r = 0; r < nr; r++) {
                const nhdb_run_view *rv = &runs[r];
                want_rows += 1 + ((rv->n + NHDB_RUN_CHUNK - 1) >> NHDB_RUN_CHUNK_SHIFT);
                total += rv->n;
                uint64_t slot = 0, prev_val = 0, prev_ord = 0;
                size_t slots = (size_t)1 << rv->dir_bits;
                int bad = 0;
                for (uint64_t i = 0; i < rv->n && !bad; i++) {
                    while (slot < slots && nhdb_get_le64(rv->dir + (slot + 1) * 8) <= i)
                        slot++;
                    if (nhdb_get_le64(rv->dir + slot * 8) > i) {
                        bad = 1; /* the directory goes backwards */
                        break;
                    }
                    uint64_t p = nhdb_run_posting(rv, i);
                    uint64_t val = slot << rv->low_bits | p >> NHDB_ORD_BITS,
                             ord = p & NHDB_ORD_MASK;
                    if ((i && (val < prev_val || (val == prev_val && ord <= prev_ord))) || (p >> NHDB_ORD_BITS) >> rv->low_bits ||
                        ord >= k->count || (seen[ord >> 3] & (1u << (ord & 7)))) {
                        bad = 1;
                        break;
                    }
                    prev_val = val;
                    prev_ord = ord;
                    seen[ord >> 3] |= (uint8_t)(1u << (ord & 7));
                    const uint8_t *h = chunks[ord >> NHDB_CHUNK_SHIFT];
                    if (ded ? dtop[ki] && dtop[ki][ord] != val
                            : h && nhdb_sub_extract(h + (ord & (NHDB_CHUNK - 1)) * k->hb, st0,
                                                    len) != val) {
                        problem(vs, "kind %u: %s list %u: the posting of ordinal %llu holds a "
                                "value its entry does not have", kid, what, s,
                                (unsigned long long)ord);
                    }
                    if (occ)
                        occ[val >> 3] |= (uint8_t)(0x80 >> (val & 7));
                }
                if (bad)
                    problem(vs, "kind %u: %s run %zu of list %u is out of order, repeats an "
                            "entry or names one beyond the count", kid, what, r, s);
            }
            for (uint64_t o = 0; o < k->count; o++)
                if (!(seen[o >> 3] & (1u << (o & 7)))) {
                    problem(vs, "entry %016llx is missing from the %s runs of list %u",
                            (unsigned long long)((uint64_t)kid << NHDB_ORD_BITS | o), what, s);
                    break;
                }
            if (total != k->count)
                problem(vs, "kind %u: %s runs of list %u hold %llu postings for %llu entries",
                        kid, what, s, (unsigned long long)total,
                        (unsigned long long)k->count);
            nhdb_runs_unmap(runs, nr);
            if (occ) {
                size_t nchunk = (size_t)1 << (len - NHDB_OCC_SHIFT);
                for (size_t c = 0; c < nchunk; c++) {
                    const uint8_t *want = occ + c * NHDB_OCC_BYTES;
                    uint8_t kb[9];
                    nhdb_occ_key(kb, kid, s, (uint32_t)c);
                    MDB_val key = {9, kb}, v;
                    int g = mdb_get(txn, db->dbi_occ, &key, &v);
                    int any = 0;
                    for (size_t b = 0; b < NHDB_OCC_BYTES; b++) {
                        want_bits += (uint64_t)__builtin_popcount(want[b]);
                        any |= want[b];
                    }
                    if ((g == 0 && (v.mv_size != NHDB_OCC_BYTES + db->tail ||
                                    memcmp(v.mv_data, want, NHDB_OCC_BYTES) != 0)) ||
                        (g == MDB_NOTFOUND && any)) {
                        problem(vs, "kind %u: occupancy bitmap of substring %u, chunk %zu, "
                                "differs from the MIH runs", kid, s, c);
                    }
                }
                free(occ);
            }
        }
        free(chunks);
        free(seen);
    }
    if (rc)
        return rc;
    if (table_rows(txn, db->dbi_mih) != want_rows)
        problem(vs, "MIH/dedupe run table has %llu rows, the runs account for %llu",
                (unsigned long long)table_rows(txn, db->dbi_mih), (unsigned long long)want_rows);
    MDB_cursor *co;
    MDB_val k, v;
    if ((rc = mdb_cursor_open(txn, db->dbi_occ, &co)))
        return rc;
    for (rc = mdb_cursor_get(co, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(co, &k, &v, MDB_NEXT))
        for (size_t b = 0; b + db->tail < v.mv_size; b++)
            bits += (uint64_t)__builtin_popcount(((const uint8_t *)v.mv_data)[b]);
    mdb_cursor_close(co);
    if (bits != want_bits)
        problem(vs, "occupancy bitmaps hold %llu values, the MIH runs %llu",
                (unsigned long long)bits, (unsigned long long)want_bits);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Schema 3: every value of nhdb's own tables ends with the checksum of its key and payload
 * (the digest index, 8-byte ids, is checked row by row against the entries instead). */
static int verify_sums(nh_db *db, MDB_txn *txn, verify_state *vs)
{
    static const struct {
        const char *name;
        size_t off;
    } t[] = {
        {"meta", offsetof(nh_db, dbi_meta)},     {"entries", offsetof(nh_db, dbi_entries)},
        {"mihrun", offsetof(nh_db, dbi_mih)},    {"packed", offsetof(nh_db, dbi_packed)},
        {"occupancy", offsetof(nh_db, dbi_occ)},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0] && !rc; i++) {
        MDB_dbi dbi = *(const MDB_dbi *)((const char *)db + t[i].off);
        MDB_cursor *c;
        MDB_val k, v;
        if ((rc = mdb_cursor_open(txn, dbi, &c)))
            break;
        for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
             rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
            if (nhdb_sum_ok(&k, &v))
                continue;
            char hex[2 * 16 + 1];
            size_t n = k.mv_size < 16 ? k.mv_size : 16;
            for (size_t j = 0; j < n; j++)
                snprintf(hex + 2 * j, 3, "%02x", ((const uint8_t *)k.mv_data)[j]);
            hex[2 * n] = 0;
            problem(vs, "table %s: the value of key %s%s (%zu bytes) fails its checksum",
                    t[i].name, hex, k.mv_size > n ? "..." : "", v.mv_size);
        }
        mdb_cursor_close(c);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    return rc;
}

/* LMDB keeps two meta pages and reads the one with the higher transaction id; when that one is
 * damaged it silently falls back to the older snapshot, which is self-consistent. So both must
 * be intact: LMDB 0.9's layout (64-bit), page p at offset p * page size, the MDB_meta after the
 * 16-byte page header: magic u32 at 16, format version u32 at 20, last page at 136 and
 * transaction id at 144. Transaction t writes page t % 2, so the newer page holds t = the id
 * this snapshot reads (or a later commit's) and the other t - 1. */
static void verify_meta_pages(nh_db *db, MDB_txn *txn, verify_state *vs)
{
#if MDB_VERSION_MAJOR == 0
    MDB_stat es;
    char file[1100];
    uint8_t pg[2][160];
    if (sizeof(size_t) != 8 || sizeof(void *) != 8 || mdb_env_stat(db->env, &es) != 0)
        return;
    snprintf(file, sizeof file, "%s/data.mdb", db->path);
    FILE *f = fopen(file, "rb");
    if (!f)
        return;
    int got = 1;
    for (unsigned p = 0; p < 2 && got; p++)
        got = fseek(f, (long)p * (long)es.ms_psize, SEEK_SET) == 0 &&
              fread(pg[p], sizeof pg[p], 1, f) == 1;
    fclose(f);
    if (!got) {
        problem(vs, "data.mdb: cannot read its meta pages");
        return;
    }
    uint64_t tx[2];
    for (unsigned p = 0; p < 2; p++) {
        if (nhdb_get_le64(pg[p]) != p || !(nhdb_get_le16(pg[p] + 10) & 0x08) ||
            nhdb_get_le32(pg[p] + 16) != 0xBEEFC0DEu || nhdb_get_le32(pg[p] + 20) != 1) {
            problem(vs, "data.mdb: LMDB meta page %u is damaged (LMDB reads the other one: an "
                    "older snapshot, or nothing)", p);
            return;
        }
        tx[p] = nhdb_get_le64(pg[p] + 144);
    }
    unsigned newer = tx[1] > tx[0];
    uint64_t t = tx[newer], id = (uint64_t)mdb_txn_id(txn);
    if (!(t == 0 && tx[!newer] == 0) &&
        (tx[!newer] != t - 1 || (t & 1) != newer || t < id))
        problem(vs, "data.mdb: LMDB meta pages hold transactions %llu and %llu, not the "
                "consecutive pair that ends with %llu: one of them is damaged",
                (unsigned long long)tx[0], (unsigned long long)tx[1], (unsigned long long)id);
#else
    (void)db;
    (void)txn;
    (void)vs;
#endif
}

nh_status nh_db_verify(nh_db *db, uint64_t *problems, nh_error *err)
{
    nh_status st = NH_OK;
    MDB_txn *txn = NULL;
    MDB_cursor *ce = NULL, *cg = NULL;
    uint32_t **dtop = NULL;
    nhdb_kind_info *kinds = NULL;
    uint64_t *seen = NULL;
    size_t nk = 0;
    verify_state vs = {db, err, 0};
    nh_error_clear(err);
    int rc = nhdb_txn_begin(db, MDB_RDONLY, &txn);
    if (rc)
        return nhdb_mdb_error(err, rc, db->path, "begin read");
    verify_meta_pages(db, txn, &vs);
    if ((st = nhdb_kinds_load(db, txn, &kinds, &nk, err)))
        goto cleanup;
    seen = calloc(nk + 1, sizeof *seen);
    dtop = calloc(nk + 1, sizeof *dtop);
    for (size_t i = 0; dtop && i < nk; i++)
        if (!(dtop[i] = calloc(kinds[i].count + 1, sizeof **dtop))) {
            free(seen);
            seen = NULL;
            break;
        }
    if (!seen || !dtop) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "verify");
        goto cleanup;
    }
    if ((rc = mdb_cursor_open(txn, db->dbi_entries, &ce)) ||
        (rc = mdb_cursor_open(txn, db->dbi_digest, &cg))) {
        st = nhdb_mdb_error(err, rc, db->path, "open cursors");
        goto cleanup;
    }
    uint64_t n_entries = 0, want_digest = 0;
    size_t cur_kind = SIZE_MAX;
    const uint8_t *chunk = NULL;
    uint64_t chunk_no = UINT64_MAX;
    MDB_val k, v;
    for (rc = mdb_cursor_get(ce, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(ce, &k, &v, MDB_NEXT)) {
        nh_db_record r;
        n_entries++;
        if (nhdb_rec_decode(&k, &v, db->tail, &r)) {
            problem(&vs, "entry record %016llx (%zu bytes) does not decode or fails its checksum",
                    k.mv_size == 8 ? (unsigned long long)nhdb_get_be64(k.mv_data) : 0ull,
                    v.mv_size);
            continue;
        }
        uint32_t kid = (uint32_t)(r.id >> NHDB_ORD_BITS);
        uint64_t ord = r.id & NHDB_ORD_MASK;
        if (cur_kind == SIZE_MAX || kinds[cur_kind].id != kid) {
            cur_kind = SIZE_MAX;
            for (size_t i = 0; i < nk; i++)
                if (kinds[i].id == kid)
                    cur_kind = i;
            chunk_no = UINT64_MAX;
        }
        if (cur_kind == SIZE_MAX) {
            problem(&vs, "entry %016llx of unknown kind %u", (unsigned long long)r.id, kid);
            continue;
        }
        nhdb_kind_info *ki = &kinds[cur_kind];
        if (r.bits != ki->bits) {
            problem(&vs, "entry %016llx has %u bits, kind has %u", (unsigned long long)r.id, r.bits,
                    ki->bits);
            continue;
        }
        if (ord != seen[cur_kind])
            problem(&vs, "kind %u: entry ordinal %llu where %llu expected", kid,
                    (unsigned long long)ord, (unsigned long long)seen[cur_kind]);
        seen[cur_kind] = ord + 1;
        if (ord >= ki->count)
            problem(&vs, "kind %u: entry ordinal %llu beyond count %llu", kid,
                    (unsigned long long)ord, (unsigned long long)ki->count);
        /* packed array */
        if ((ord >> NHDB_CHUNK_SHIFT) != chunk_no) {
            chunk_no = ord >> NHDB_CHUNK_SHIFT;
            uint8_t kb[8];
            nhdb_put_be32(kb, kid);
            nhdb_put_be32(kb + 4, (uint32_t)chunk_no);
            MDB_val pk = {8, kb}, pv;
            uint64_t want = ki->count - (chunk_no << NHDB_CHUNK_SHIFT);
            if (want > NHDB_CHUNK)
                want = NHDB_CHUNK;
            chunk = NULL;
            if (mdb_get(txn, db->dbi_packed, &pk, &pv) == 0 &&
                pv.mv_size == want * ki->hb + db->tail)
                chunk = pv.mv_data;
            else
                problem(&vs, "kind %u: packed chunk %llu missing or wrong size", kid,
                        (unsigned long long)chunk_no);
        }
        if (chunk && memcmp(chunk + (ord & (NHDB_CHUNK - 1)) * ki->hb, r.hash, ki->hb) != 0)
            problem(&vs, "kind %u: packed hash of ordinal %llu differs from its entry", kid,
                    (unsigned long long)ord);
        /* its dedupe key, checked against the dedupe runs below */
        if (dtop[cur_kind] && ord < ki->count)
            dtop[cur_kind][ord] =
                (uint32_t)(nhdb_dedupe_hash(r.hash, ki->hb, r.source, strlen(r.source)) >> 32);
        /* digest rows */
        if (r.digest) {
            want_digest++;
            if (!has_pair(cg, r.digest, 16, r.id))
                problem(&vs, "entry %016llx has no digest row", (unsigned long long)r.id);
        }
        if (ki->kind.type == NH_KIND_DIGEST &&
            !(r.digest && memcmp(r.digest, r.hash, 16) == 0)) {
            want_digest++;
            if (!has_pair(cg, r.hash, 16, r.id))
                problem(&vs, "digest entry %016llx has no digest row", (unsigned long long)r.id);
        }
    }
    if (rc != MDB_NOTFOUND) {
        st = nhdb_mdb_error(err, rc, db->path, "walk entries");
        goto cleanup;
    }
    uint64_t want_chunks = 0;
    for (size_t i = 0; i < nk; i++) {
        if (seen[i] != kinds[i].count)
            problem(&vs, "kind %u: count %llu but %llu entries", kinds[i].id,
                    (unsigned long long)kinds[i].count, (unsigned long long)seen[i]);
        want_chunks += (kinds[i].count + NHDB_CHUNK - 1) >> NHDB_CHUNK_SHIFT;
    }
    if (table_rows(txn, db->dbi_entries) != n_entries)
        problem(&vs, "entries table counts %llu rows, a walk finds %llu",
                (unsigned long long)table_rows(txn, db->dbi_entries),
                (unsigned long long)n_entries);
    if (table_rows(txn, db->dbi_digest) != want_digest)
        problem(&vs, "digest table has %llu rows, %llu expected",
                (unsigned long long)table_rows(txn, db->dbi_digest),
                (unsigned long long)want_digest);
    if (table_rows(txn, db->dbi_packed) != want_chunks)
        problem(&vs, "packed table has %llu chunks, %llu expected",
                (unsigned long long)table_rows(txn, db->dbi_packed),
                (unsigned long long)want_chunks);
    /* MIH runs and occupancy bitmaps, rebuilt from the runs and compared. */
    if ((rc = verify_mih(db, txn, kinds, nk, dtop, &vs))) {
        st = rc == -1 ? nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, db->path, "verify")
                      : nhdb_mdb_error(err, rc, db->path, "verify MIH");
        goto cleanup;
    }
    if (db->tail && (rc = verify_sums(db, txn, &vs))) {
        st = nhdb_mdb_error(err, rc, db->path, "verify checksums");
        goto cleanup;
    }
    if (vs.problems)
        st = NH_ERR_FORMAT;
    if (problems)
        *problems = vs.problems;
cleanup:
    if (cg)
        mdb_cursor_close(cg);
    for (size_t i = 0; dtop && i < nk; i++)
        free(dtop[i]);
    free(dtop);
    if (ce)
        mdb_cursor_close(ce);
    free(seen);
    free(kinds);
    mdb_txn_abort(txn);
    return st;
}
