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

void nh_match_tally_add(nh_match_tally *t, const nh_record *r, size_t matches, size_t reliable)
{
    t->files++;
    if (r->status != NH_OK) {
        t->failed++;
        return;
    }
    t->matches += matches;
    t->unreliable += matches - reliable;
    if (reliable)
        t->matched_files++;
}

int nh_match_tally_reached(const nh_match_tally *t)
{
    return t->threshold > 0 && t->matched_files >= t->threshold;
}
