// FAISS peers for nhbench-db: IndexBinaryFlat (brute force) and IndexBinaryMultiHash (hash
// tables of b-bit substrings, searched with nflip bit flips), behind a small C interface so
// the benchmark itself stays C. Built only when Debian's libfaiss-dev is found.
#include <faiss/IndexBinaryFlat.h>
#include <faiss/IndexBinaryHash.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <omp.h>

#include <cstdint>
#include <new>

#include "bench_nhdb_faiss.h"

struct nhb_faiss {
    faiss::IndexBinaryFlat *flat = nullptr;
    faiss::IndexBinaryMultiHash *mh = nullptr;
};

extern "C" nhb_faiss *nhb_faiss_create(unsigned bits, unsigned nhash, size_t n, const uint8_t *codes,
                                       int multihash)
{
    omp_set_num_threads(1); // single-threaded, like the nhdb queries it is compared with
    try {
        nhb_faiss *f = new nhb_faiss;
        if (multihash) {
            f->mh = new faiss::IndexBinaryMultiHash((int)bits, (int)nhash, (int)(bits / nhash));
            f->mh->add((faiss::IndexBinary::idx_t)n, codes);
        } else {
            f->flat = new faiss::IndexBinaryFlat((int)bits);
            f->flat->add((faiss::IndexBinary::idx_t)n, codes);
        }
        return f;
    } catch (...) {
        return nullptr;
    }
}

extern "C" long nhb_faiss_range(nhb_faiss *f, size_t nq, const uint8_t *q, unsigned radius)
{
    try {
        faiss::RangeSearchResult res((faiss::IndexBinary::idx_t)nq);
        // range_search keeps distances < radius: ask for radius+1 to get <= radius
        if (f->mh) {
            f->mh->nflip = (int)(radius / f->mh->nhash); // pigeonhole: exact
            f->mh->range_search((faiss::IndexBinary::idx_t)nq, q, (int)radius + 1, &res);
        } else {
            f->flat->range_search((faiss::IndexBinary::idx_t)nq, q, (int)radius + 1, &res);
        }
        return (long)res.lims[nq];
    } catch (...) {
        return -1;
    }
}

extern "C" void nhb_faiss_destroy(nhb_faiss *f)
{
    if (!f)
        return;
    delete f->flat;
    delete f->mh;
    delete f;
}
