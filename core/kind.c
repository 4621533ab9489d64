/* nhash hash kinds and variants: the one table of names. See nhash/kind.h. */
#include "nhash/kind.h"

#include <string.h>

static const struct {
    const char *name;
    unsigned bits;
} kinds[NH_KIND_TYPES + 1] = {
    [NH_KIND_NEURAL] = {"neural", NH_NEURAL_DEFAULT_BITS},
    [NH_KIND_PDQ] = {"pdq", 256},
    [NH_KIND_DIGEST] = {"digest", 128},
};

static int type_known(nh_kind_type type)
{
    return type >= NH_KIND_NEURAL && type <= NH_KIND_DIGEST;
}

unsigned nh_kind_type_bits(nh_kind_type type)
{
    return type_known(type) ? kinds[type].bits : 0;
}

unsigned nh_kind_bits(const nh_kind *kind)
{
    return kind->bits ? kind->bits : nh_kind_type_bits(kind->type);
}

int nh_kind_bits_valid(nh_kind_type type, unsigned bits)
{
    if (type == NH_KIND_NEURAL)
        return bits >= 8 && bits <= 8 * NH_HASH_MAX_BYTES && bits % 8 == 0;
    return type_known(type) && bits == kinds[type].bits;
}

nh_kind nh_kind_of(nh_kind_type type)
{
    nh_kind k;
    memset(&k, 0, sizeof k);
    k.type = type;
    k.bits = nh_kind_type_bits(type);
    return k;
}

nh_kind nh_kind_neural(uint64_t fingerprint, unsigned bits)
{
    nh_kind k = nh_kind_of(NH_KIND_NEURAL);
    for (int i = 0; i < 8; i++)
        k.model[i] = (uint8_t)(fingerprint >> (56 - 8 * i));
    if (bits)
        k.bits = bits;
    return k;
}

uint64_t nh_kind_fingerprint(const nh_kind *kind)
{
    uint64_t fp = 0;
    for (int i = 0; i < 8; i++)
        fp = fp << 8 | kind->model[i];
    return fp;
}

int nh_kind_equal(const nh_kind *a, const nh_kind *b)
{
    return a->type == b->type && nh_kind_bits(a) == nh_kind_bits(b) &&
           !memcmp(a->model, b->model, 8);
}

const char *nh_kind_name(nh_kind_type type)
{
    return type_known(type) ? kinds[type].name : NULL;
}

nh_status nh_kind_parse_n(const char *name, size_t len, nh_kind_type *out)
{
    if (!name)
        return NH_ERR_INVALID;
    for (int t = NH_KIND_NEURAL; t <= NH_KIND_DIGEST; t++) {
        if (strlen(kinds[t].name) == len && !memcmp(name, kinds[t].name, len)) {
            *out = (nh_kind_type)t;
            return NH_OK;
        }
    }
    if (len == 6 && !memcmp(name, "xxh128", 6)) {
        *out = NH_KIND_DIGEST;
        return NH_OK;
    }
    return NH_ERR_INVALID;
}

nh_status nh_kind_parse(const char *name, nh_kind_type *out)
{
    return name ? nh_kind_parse_n(name, strlen(name), out) : NH_ERR_INVALID;
}

nh_status nh_kind_parse_list(const char *list, unsigned *mask)
{
    unsigned m = 0;
    if (!list || !*list)
        return NH_ERR_INVALID;
    for (const char *s = list;;) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        nh_kind_type t;
        if (nh_kind_parse_n(s, n, &t) != NH_OK)
            return NH_ERR_INVALID;
        m |= NH_KIND_BIT(t);
        if (!e)
            break;
        s = e + 1;
    }
    *mask = m;
    return NH_OK;
}

static const char *const variant_names[NH_VARIANTS] = {
    "original", "rotate90", "rotate180", "rotate270", "flipx", "flipy", "flip+1", "flip-1"};
static const char *const variant_pdq_names[NH_VARIANTS] = {
    "orig", "rot90", "rot180", "rot270", "flipx", "flipy", "flipplus1", "flipminus1"};

const char *nh_variant_name(nh_variant v)
{
    return (unsigned)v < NH_VARIANTS ? variant_names[v] : NULL;
}

const char *nh_variant_pdq_name(nh_variant v)
{
    return (unsigned)v < NH_VARIANTS ? variant_pdq_names[v] : NULL;
}

nh_status nh_variant_parse(const char *name, nh_variant *out)
{
    for (int v = 0; name && v < NH_VARIANTS; v++) {
        if (!strcmp(name, variant_names[v]) || !strcmp(name, variant_pdq_names[v])) {
            *out = (nh_variant)v;
            return NH_OK;
        }
    }
    return NH_ERR_INVALID;
}

size_t nh_hash_size(const nh_hash *h)
{
    return nh_kind_bits(&h->kind) / 8;
}
