/*
 * memfill — holds SIZE_MB MiB of memory with real (incompressible) content, for measuring
 * checkpoint and restart cost against image size.
 *
 * usage: memfill SIZE_MB
 *
 * Fills the memory from a xorshift generator, prints "ready SIZE_MB" and waits for a signal.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2 || atol(argv[1]) <= 0) {
		fprintf(stderr, "usage: memfill SIZE_MB\n");
		return 1;
	}
	size_t words = (size_t)atol(argv[1]) << 17; /* MiB of uint64 */
	uint64_t *mem = malloc(words * sizeof(uint64_t));
	if (mem == NULL) {
		fprintf(stderr, "memfill: cannot allocate %s MiB\n", argv[1]);
		return 1;
	}
	uint64_t x = 0x9e3779b97f4a7c15ULL;
	for (size_t i = 0; i < words; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		mem[i] = x;
	}
	printf("ready %s\n", argv[1]);
	fflush(stdout);
	for (;;)
		pause();
}
