/* mix — the 64-bit finalizer of MurmurHash3: the MPI test programs derive their data from it. */
#ifndef COHORT_MPI_TESTS_MIX_H
#define COHORT_MPI_TESTS_MIX_H

#include <stdint.h>

static inline uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

#endif
