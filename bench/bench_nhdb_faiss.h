/* C interface to the FAISS peers of nhbench-db (bench_nhdb_faiss.cpp). */
#ifndef NH_BENCH_NHDB_FAISS_H
#define NH_BENCH_NHDB_FAISS_H
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif
typedef struct nhb_faiss nhb_faiss;
/* codes: n x bits/8 bytes. multihash: IndexBinaryMultiHash(bits, nhash, bits/nhash), else
 * IndexBinaryFlat. NULL on failure. */
nhb_faiss *nhb_faiss_create(unsigned bits, unsigned nhash, size_t n, const uint8_t *codes,
                            int multihash);
/* Range search of nq queries for distance <= radius; returns the total matches or -1. */
long nhb_faiss_range(nhb_faiss *f, size_t nq, const uint8_t *q, unsigned radius);
void nhb_faiss_destroy(nhb_faiss *f);
#ifdef __cplusplus
}
#endif
#endif
