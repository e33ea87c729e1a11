/*
 * filewriter — a job that writes a file as simulation codes do, for measuring what tracking the
 * files a job writes adds to its checkpoint and restart (bench part 7).
 *
 * usage: filewriter MODE DIR MEM_MB
 *
 * Every mode first holds MEM_MB MiB of real (incompressible) memory, as memfill does, so that the
 * modes' images differ only by what the file adds. Then:
 *   append   DIR/append.log, opened with fopen("a"): 1 GiB written at once, then one line
 *            appended every 100 ms; the file stays open (an output or log file);
 *   inplace  DIR/inplace.bin, opened O_RDWR: 100 MiB written at once, then a random 4 KiB
 *            block rewritten in place with pwrite every 100 ms (a restart file updated in place);
 *   none     no file (the baseline).
 * Every mode also rewrites a random 4 KiB block of its memory every 100 ms.
 * The initial content is fsync'd before "ready MODE" is printed, so that its write-back does not
 * run during the measured checkpoints. Runs until killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BLOCK 4096
#define CHUNK (1 << 20)

static uint64_t x = 0x9e3779b97f4a7c15ULL;

static uint64_t next(void)
{
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return x;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static void fail(const char *what, const char *path)
{
	fprintf(stderr, "filewriter: %s %s: %s\n", what, path, strerror(errno));
	exit(2);
}

int main(int argc, char **argv)
{
	char path[4096];
	FILE *log = NULL;
	int fd = -1;
	long mib = 0;

	if (argc != 4 || atol(argv[3]) <= 0 ||
	    (strcmp(argv[1], "append") && strcmp(argv[1], "inplace") && strcmp(argv[1], "none"))) {
		fprintf(stderr, "usage: filewriter append|inplace|none DIR MEM_MB\n");
		return 1;
	}
	size_t words = (size_t)atol(argv[3]) << 17; /* MiB of uint64 */
	uint64_t *mem = malloc(words * sizeof(uint64_t));
	if (mem == NULL) {
		fprintf(stderr, "filewriter: cannot allocate %s MiB\n", argv[3]);
		return 1;
	}
	for (size_t i = 0; i < words; i++)
		mem[i] = next();

	if (!strcmp(argv[1], "append")) {
		snprintf(path, sizeof(path), "%s/append.log", argv[2]);
		unlink(path); /* a fresh log: "a" would extend one left by an earlier run */
		log = fopen(path, "a");
		if (!log)
			fail("cannot open", path);
		mib = 1024;
		for (long i = 0; i < mib; i++)
			if (fwrite((char *)mem + (i % (long)atol(argv[3])) * CHUNK, 1, CHUNK, log) != CHUNK)
				fail("cannot write", path);
		if (fflush(log) != 0 || fsync(fileno(log)) != 0)
			fail("cannot write", path);
	} else if (!strcmp(argv[1], "inplace")) {
		snprintf(path, sizeof(path), "%s/inplace.bin", argv[2]);
		fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			fail("cannot open", path);
		mib = 100;
		for (long i = 0; i < mib; i++)
			if (write(fd, (char *)mem + (i % (long)atol(argv[3])) * CHUNK, CHUNK) != CHUNK)
				fail("cannot write", path);
		if (fsync(fd) != 0)
			fail("cannot write", path);
	}
	printf("ready %s\n", argv[1]);
	fflush(stdout);

	uint64_t block[BLOCK / sizeof(uint64_t)];
	for (long step = 0;; step++) {
		for (size_t i = 0; i < BLOCK / sizeof(uint64_t); i++)
			block[i] = next();
		if (log) {
			if (fprintf(log, "step %ld value %016llx\n", step,
				    (unsigned long long)block[0]) < 0 ||
			    fflush(log) != 0)
				fail("cannot write", path);
		} else if (fd >= 0) {
			off_t at = (off_t)(next() % (uint64_t)(mib * (CHUNK / BLOCK))) * BLOCK;
			if (pwrite(fd, block, BLOCK, at) != BLOCK)
				fail("cannot write", path);
		}
		memcpy((char *)mem + (next() % (words * sizeof(uint64_t) / BLOCK)) * BLOCK, block,
		       BLOCK);
		sleep_ms(100);
	}
}
