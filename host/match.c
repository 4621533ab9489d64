/* nhash matching: records against a hash set, archives against a threshold. See
 * nhash/match.h. */
#include "nhash/match.h"

#include <stdlib.h>
#include <string.h>

#include "nhdb/nhdb.h"

/* Hits of a kind whose record carries variants: gathered over the variants, then reported
 * once per entry at the best distance. */
struct hit {
    uint64_t id;
    unsigned distance;
    int variant;
};

struct ctx {
    nh_db_reader *rd;
    nh_kind_type kind;
    unsigned radius;
    int query_unreliable;
    int query_quality;     /* the record's PDQ quality while matching PDQ, else -1 */
    int variant;           /* >= 0 while gathering variant hits */
    struct hit *hits;
    size_t nhits, caphits;
    nh_match_fn fn;
    void *user;
    size_t n, reliable;
    nh_error *err;
    nh_status st;
};

static int emit(struct ctx *c, uint64_t id, unsigned distance, int variant)
{
    nh_db_record rec;
    nh_status st = nh_db_reader_get(c->rd, id, &rec, c->err);
    if (st != NH_OK) {
        c->st = st;
        return 1;
    }
    nh_match m;
    memset(&m, 0, sizeof m);
    m.kind = c->kind;
    m.distance = distance;
    m.radius = c->radius;
    m.id = id;
    m.source = rec.source;
    m.label = rec.label;
    m.note = rec.note;
    m.added = rec.added;
    m.quality = rec.quality;
    m.digest = rec.digest;
    m.query_quality = c->query_quality;
    m.unreliable = c->query_unreliable ||
                   (rec.quality >= 0 && rec.quality < NH_MATCH_PDQ_MIN_QUALITY);
    m.has_variant = variant >= 0;
    m.variant = variant >= 0 ? (nh_variant)variant : NH_VARIANT_ORIGINAL;
    c->n++;
    if (!m.unreliable)
        c->reliable++;
    return c->fn ? c->fn(&m, c->user) : 0;
}

static int on_hit(void *ctx, uint64_t id, unsigned distance)
{
    struct ctx *c = ctx;
    if (c->variant < 0)
        return emit(c, id, distance, -1);
    for (size_t i = 0; i < c->nhits; i++) {
        if (c->hits[i].id == id) {
            if (distance < c->hits[i].distance) {
                c->hits[i].distance = distance;
                c->hits[i].variant = c->variant;
            }
            return 0;
        }
    }
    if (c->nhits == c->caphits) {
        size_t cap = c->caphits ? c->caphits * 2 : 16;
        struct hit *h = realloc(c->hits, cap * sizeof *h);
        if (!h) {
            c->st = nh_error_set(c->err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
            return 1;
        }
        c->hits = h;
        c->caphits = cap;
    }
    c->hits[c->nhits++] = (struct hit){id, distance, c->variant};
    return 0;
}

/* Every hash of one kind in the record: plain, or each variant then the gathered hits. */
static nh_status match_kind(struct ctx *c, const nh_kind *kind, const nh_record *r,
                            unsigned radius)
{
    nh_db_query_opts q;
    memset(&q, 0, sizeof q);
    q.radius = radius;
    c->kind = kind->type;
    c->radius = radius;
    const nh_hash *orig = nh_record_hash(r, kind->type, NH_VARIANT_ORIGINAL);
    if (!orig)
        return NH_OK;
    c->query_unreliable = kind->type == NH_KIND_PDQ && orig->quality >= 0 &&
                          orig->quality < NH_MATCH_PDQ_MIN_QUALITY;
    c->query_quality = kind->type == NH_KIND_PDQ ? orig->quality : -1;
    int variants = 0;
    for (size_t i = 0; i < r->nhashes; i++)
        variants += r->hashes[i].kind.type == kind->type &&
                    r->hashes[i].variant != NH_VARIANT_ORIGINAL;
    nh_status st = NH_OK;
    if (!variants) {
        c->variant = -1;
        st = nh_db_query_each(c->rd, kind, orig->bytes, &q, on_hit, c, c->err);
    } else {
        c->nhits = 0;
        for (int v = 0; v < NH_VARIANTS && st == NH_OK && c->st == NH_OK; v++) {
            const nh_hash *h = nh_record_hash(r, kind->type, (nh_variant)v);
            if (!h)
                continue;
            c->variant = v;
            st = nh_db_query_each(c->rd, kind, h->bytes, &q, on_hit, c, c->err);
        }
        c->variant = -1;
        for (size_t i = 0; i < c->nhits && st == NH_OK && c->st == NH_OK; i++)
            if (emit(c, c->hits[i].id, c->hits[i].distance, c->hits[i].variant))
                break;
        c->nhits = 0;
    }
    c->query_unreliable = 0;
    c->query_quality = -1;
    return st;
}

nh_status nh_match_record(nh_db_reader *rd, const nh_kind *neural, const nh_match_opts *o,
                          const nh_record *r, nh_match_fn fn, void *user, size_t *n,
                          size_t *reliable, nh_error *err)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    c.rd = rd;
    c.fn = fn;
    c.user = user;
    c.err = err;
    c.variant = -1;
    c.query_quality = -1;
    nh_status st = NH_OK;
    if (r->status == NH_OK) {
        nh_kind pdq = nh_kind_of(NH_KIND_PDQ), digest = nh_kind_of(NH_KIND_DIGEST);
        if (neural)
            st = match_kind(&c, neural, r, o->radius_neural);
        if (st == NH_OK && c.st == NH_OK)
            st = match_kind(&c, &pdq, r, o->radius_pdq);
        if (st == NH_OK && c.st == NH_OK)
            st = match_kind(&c, &digest, r, 0);
    }
    free(c.hits);
    if (n)
        *n = c.n;
    if (reliable)
        *reliable = c.reliable;
    if (st == NH_ERR_INTERRUPTED && c.st == NH_OK)
        st = NH_OK; /* the callback asked to stop */
    return st != NH_OK ? st : c.st;
}

/* ---- Joining by known image ---- */

struct gather {
    nh_match *m;
    size_t n, cap;
    nh_error *err;
    nh_status st;
};

static int gather_one(const nh_match *m, void *user)
{
    struct gather *g = user;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        nh_match *x = realloc(g->m, cap * sizeof *x);
        if (!x) {
            g->st = nh_error_set(g->err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
            return 1;
        }
        g->m = x;
        g->cap = cap;
    }
    g->m[g->n++] = *m;
    return 0;
}

/* The known-image key order: entries with a digest (by digest), then by source. */
static int key_cmp(const nh_match *a, const nh_match *b)
{
    if (!a->digest != !b->digest)
        return a->digest ? -1 : 1;
    if (a->digest)
        return memcmp(a->digest, b->digest, NH_MATCH_DIGEST_BYTES);
    return strcmp(a->source ? a->source : "", b->source ? b->source : "");
}

/* A match and its place in the report order, sorted by known image. */
struct item {
    nh_match m;
    size_t i;
};

static int item_cmp(const void *x, const void *y)
{
    const struct item *a = x, *b = y;
    int c = key_cmp(&a->m, &b->m);
    return c ? c : (a->i > b->i) - (a->i < b->i); /* stable: evidence keeps its kind order */
}

/* One known image: [lo, hi) of the sorted index. */
struct known {
    size_t lo, hi, first;
    nh_match_status status;
    unsigned by;
};

static int known_cmp(const void *x, const void *y)
{
    const struct known *a = x, *b = y;
    if (a->status != b->status)
        return a->status == NH_MATCH_CONFIRMED ? -1 : b->status == NH_MATCH_CONFIRMED ? 1 : 0;
    return (a->first > b->first) - (a->first < b->first);
}

nh_status nh_match_file(nh_db_reader *rd, const nh_kind *neural, const nh_match_opts *o,
                        const nh_record *r, nh_match_known_fn fn, void *user,
                        nh_match_result *res, nh_error *err)
{
    struct gather g = {.err = err};
    nh_match_result out = {0};
    struct item *it = NULL;
    struct known *kn = NULL;
    nh_match *ev = NULL;
    nh_status st = nh_match_record(rd, neural, o, r, gather_one, &g, NULL, NULL, err);
    if (st == NH_OK)
        st = g.st;
    if (st != NH_OK || g.n == 0)
        goto done;
    const nh_hash *fd = nh_record_hash(r, NH_KIND_DIGEST, NH_VARIANT_ORIGINAL);
    it = malloc(g.n * sizeof *it);
    kn = malloc(g.n * sizeof *kn);
    ev = malloc(g.n * sizeof *ev);
    if (!it || !kn || !ev) {
        st = nh_error_set(err, NH_ERR_NOMEM, NH_FOREIGN_NONE, 0, NULL, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < g.n; i++)
        it[i] = (struct item){g.m[i], i};
    qsort(it, g.n, sizeof *it, item_cmp);
    size_t nk = 0;
    for (size_t i = 0; i < g.n;) {
        size_t j = i;
        int neural_ok = 0, pdq_ok = 0, reliable = 0;
        unsigned by = 0;
        struct known *k = &kn[nk++];
        k->first = it[i].i; /* the smallest: items of one key are in report order */
        while (j < g.n && key_cmp(&it[i].m, &it[j].m) == 0) {
            const nh_match *m = &it[j].m;
            ev[j] = *m;
            if (!m->unreliable) {
                reliable = 1;
                neural_ok |= m->kind == NH_KIND_NEURAL;
                pdq_ok |= m->kind == NH_KIND_PDQ;
            }
            if (m->kind == NH_KIND_DIGEST ||
                (fd && m->digest && !memcmp(m->digest, fd->bytes, NH_MATCH_DIGEST_BYTES)))
                by |= NH_CONFIRM_DIGEST;
            j++;
        }
        if (neural_ok && pdq_ok)
            by |= NH_CONFIRM_PERCEPTUAL;
        k->lo = i;
        k->hi = j;
        k->by = by;
        k->status = by ? NH_MATCH_CONFIRMED
                       : reliable ? NH_MATCH_UNCONFIRMED : NH_MATCH_UNRELIABLE;
        out.known++;
        out.confirmed += k->status == NH_MATCH_CONFIRMED;
        out.unconfirmed += k->status == NH_MATCH_UNCONFIRMED;
        out.unreliable += k->status == NH_MATCH_UNRELIABLE;
        i = j;
    }
    qsort(kn, nk, sizeof *kn, known_cmp);
    for (size_t i = 0; fn && i < nk; i++) {
        nh_match_known k = {.digest = ev[kn[i].lo].digest,
                            .source = ev[kn[i].lo].source,
                            .n = kn[i].hi - kn[i].lo,
                            .ev = &ev[kn[i].lo],
                            .status = kn[i].status,
                            .confirmed_by = kn[i].by};
        if (fn(&k, user))
            break;
    }
done:
    free(g.m);
    free(it);
    free(kn);
    free(ev);
    if (res)
        *res = out;
    return st;
}

const char *nh_match_status_name(nh_match_status s)
{
    switch (s) {
    case NH_MATCH_CONFIRMED: return "confirmed";
    case NH_MATCH_UNCONFIRMED: return "unconfirmed";
    default: return "unreliable";
    }
}

int nh_count_rule_parse(const char *s)
{
    if (!strcmp(s, "confirmed"))
        return NH_COUNT_CONFIRMED;
    if (!strcmp(s, "any"))
        return NH_COUNT_ANY;
    return -1;
}

const char *nh_count_rule_name(nh_count_rule r)
{
    return r == NH_COUNT_ANY ? "any" : "confirmed";
}

void nh_match_tally_add(nh_match_tally *t, const nh_record *r, const nh_match_result *res)
{
    t->files++;
    if (r->status != NH_OK) {
        t->failed++;
        return;
    }
    if (!res)
        return;
    t->matches += res->known;
    t->confirmed += res->confirmed;
    t->unconfirmed += res->unconfirmed;
    t->unreliable += res->unreliable;
    int listed = res->confirmed + res->unconfirmed > 0;
    t->matched_files += listed;
    t->confirmed_files += res->confirmed > 0;
    t->counted_files += t->rule == NH_COUNT_ANY ? listed : res->confirmed > 0;
}

int nh_match_tally_reached(const nh_match_tally *t)
{
    return t->threshold > 0 && t->counted_files >= t->threshold;
}
