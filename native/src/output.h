/*
 * The job's output, kept by pid 1: the main process writes its stdout and
 * stderr into two pipes; pid 1 appends what it reads to the stdout log and
 * the stderr log, and records the order of the chunks in the order file,
 * so that both can be shown interleaved as they were written, or apart.
 *
 * The order file is a sequence of 4-byte little-endian records, one per
 * chunk: bit 31 is the stream (0 stdout, 1 stderr), bits 0-30 its length.
 * A chunk's bytes are appended before its record, so a reader that follows
 * the records never reads past what is in the logs.
 *
 * Like the diagnostics (log.h), every append opens and closes its file:
 * pid 1 keeps no fd to a node file, only the pipes, which CRIU dumps with
 * the data they hold.
 */
#ifndef COHORT_OUTPUT_H
#define COHORT_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>

enum output_stream {
	OUTPUT_STDOUT = 0,
	OUTPUT_STDERR = 1,
};

struct output {
	bool on;		/* false: the main process writes the log itself */
	int pipe[2];		/* read ends, non-blocking; -1 once at EOF */
	const char *log[2];	/* stdout log, stderr log */
	const char *order;	/* order file */
};

/*
 * Create the two pipes; *child gets their write ends (CLOEXEC, for the
 * main process to dup2 onto 1 and 2; pid 1 closes them once it forked).
 */
int output_open(struct output *o, int child[2]);

/* Append buf to a stream's log and record it in the order file: 0 or -1. */
int output_write(const struct output *o, enum output_stream s, const void *buf, size_t len);

/*
 * Copy what a stream's pipe holds to its log (up to one pipe's worth).
 * Returns the bytes copied, 0 when there were none; at EOF the pipe is
 * closed and its slot set to -1.
 */
int output_copy(struct output *o, enum output_stream s);

/* Copy everything the pipes hold now, without waiting for more. */
void output_drain(struct output *o);

#endif
