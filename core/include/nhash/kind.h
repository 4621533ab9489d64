/*
 * nhash hash kinds: the one vocabulary of what a hash is, shared by libnhash (hashers,
 * pipeline, matching), libnhdb (the database stores kinds by these numbers) and every CLI.
 *
 * A kind is (type, bits, model): two neural models are two kinds, and so are two widths.
 * A hash is a kind, its bytes in canonical big-endian order (bit 0 = MSB of byte 0), and
 * where the hasher gives them a quality (PDQ) and a variant (the dihedral transform or mirror
 * of the file that this hash was computed from).
 *
 * Names: kinds print as "neural", "pdq", "digest" (the parser also takes "xxh128");
 * variants as "original", "rotate90", "rotate180", "rotate270", "flipx", "flipy", "flip+1",
 * "flip-1" (PDQ's dihedral order, which the neural mirror reuses as "flipx").
 */
#ifndef NHASH_KIND_H
#define NHASH_KIND_H

#include <stddef.h>
#include <stdint.h>

#include "nhash/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The numbers are stored in nhdb's kind records: never renumber. */
typedef enum nh_kind_type {
    NH_KIND_NEURAL = 1, /* network scores projected to bits; qualified by the model */
    NH_KIND_PDQ = 2,    /* Meta's PDQ, 256 bits */
    NH_KIND_DIGEST = 3, /* xxh128 of the file's bytes, 128 bits */
} nh_kind_type;

#define NH_KIND_TYPES 3
#define NH_HASH_MAX_BYTES 128  /* the widest hash a kind may have (1024-bit neural) */
#define NH_NEURAL_DEFAULT_BITS 96

/*
 * A hash kind. model: the neural model's fingerprint (xxHash64 of the .nhm file, canonical
 * big-endian bytes), all zero for other types. bits: the hash width; 0 means the type's
 * standard width (neural 96, pdq 256, digest 128), so {NH_KIND_PDQ} is a complete kind.
 */
typedef struct nh_kind {
    nh_kind_type type;
    uint8_t model[8];
    unsigned bits;
} nh_kind;

/* Standard width of a type (96, 256, 128), 0 for an unknown type. */
unsigned nh_kind_type_bits(nh_kind_type type);
/* Width of a kind: its bits, or its type's standard width when bits is 0. */
unsigned nh_kind_bits(const nh_kind *kind);
/* Whether bits is a width this type can have: neural 8..1024 in whole bytes, the others
 * their standard width only. */
int nh_kind_bits_valid(nh_kind_type type, unsigned bits);
/* A kind for a type (model zero, standard width). */
nh_kind nh_kind_of(nh_kind_type type);
/* A neural kind for a model fingerprint (as a number) and width. */
nh_kind nh_kind_neural(uint64_t fingerprint, unsigned bits);
/* The model fingerprint of a kind as a number (0 for other types). */
uint64_t nh_kind_fingerprint(const nh_kind *kind);
/* Same type, same model, same width. */
int nh_kind_equal(const nh_kind *a, const nh_kind *b);

/* "neural", "pdq", "digest", or NULL for an unknown type. */
const char *nh_kind_name(nh_kind_type type);
/* Parse a kind name ("xxh128" is digest); NH_ERR_INVALID when unknown (out untouched). */
nh_status nh_kind_parse(const char *name, nh_kind_type *out);
/* Same for name[0..len), for parsing lists without copying. */
nh_status nh_kind_parse_n(const char *name, size_t len, nh_kind_type *out);
/* Parse a comma-separated list of kind names into a mask of (1u << type): NH_ERR_INVALID on
 * an empty list or an unknown name. */
nh_status nh_kind_parse_list(const char *list, unsigned *mask);
#define NH_KIND_BIT(type) (1u << (unsigned)(type))

/* Variants: which transform of the file a hash was computed from. */
typedef enum nh_variant {
    NH_VARIANT_ORIGINAL = 0,
    NH_VARIANT_ROTATE90 = 1,
    NH_VARIANT_ROTATE180 = 2,
    NH_VARIANT_ROTATE270 = 3,
    NH_VARIANT_FLIPX = 4, /* left-right mirror */
    NH_VARIANT_FLIPY = 5,
    NH_VARIANT_FLIP_PLUS1 = 6,
    NH_VARIANT_FLIP_MINUS1 = 7,
} nh_variant;
#define NH_VARIANTS 8

/* "original", "rotate90", ..., "flip-1"; NULL outside 0..7. */
const char *nh_variant_name(nh_variant v);
/* The reference PDQ tool's column name for a variant ("orig", "rot90", ..., "flipminus1");
 * NULL outside 0..7. */
const char *nh_variant_pdq_name(nh_variant v);
/* Parse either name form; NH_ERR_INVALID when unknown. */
nh_status nh_variant_parse(const char *name, nh_variant *out);

/* A hash with its kind. Only the first nh_kind_bits(&kind) / 8 bytes of bytes are used. */
typedef struct nh_hash {
    nh_kind kind;
    nh_variant variant;
    int quality;   /* PDQ 0..100; -1 when the kind has none */
    double margin; /* neural: the smallest |score| (how near a bit came to flipping); 0 else */
    uint8_t bytes[NH_HASH_MAX_BYTES];
} nh_hash;

/* Bytes of a hash (nh_kind_bits / 8). */
size_t nh_hash_size(const nh_hash *h);

#ifdef __cplusplus
}
#endif
#endif
