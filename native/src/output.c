#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>

#define LOG_PREFIX "output: "
#include "log.h"
#include "output.h"
#include "util.h"

#define CHUNK_MAX 65536
#define ORDER_STDERR 0x80000000u

int output_open(struct output *o, int child[2])
{
	int p[2][2] = { { -1, -1 }, { -1, -1 } };
	int s;

	for (s = 0; s < 2; s++) {
		if (pipe2(p[s], O_CLOEXEC) < 0) {
			pr_perror("create the %s pipe", s ? "stderr" : "stdout");
			goto fail;
		}
		if (fcntl(p[s][0], F_SETFL, O_NONBLOCK) < 0) {
			pr_perror("make the %s pipe non-blocking", s ? "stderr" : "stdout");
			goto fail;
		}
	}
	for (s = 0; s < 2; s++) {
		o->pipe[s] = p[s][0];
		child[s] = p[s][1];
	}
	return 0;
fail:
	for (s = 0; s < 2; s++) {
		if (p[s][0] >= 0)
			close(p[s][0]);
		if (p[s][1] >= 0)
			close(p[s][1]);
	}
	return -1;
}

static int append(const char *path, const void *buf, size_t len)
{
	int fd, ret;

	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	ret = write_full(fd, buf, len);
	close(fd);
	return ret;
}

int output_write(const struct output *o, enum output_stream s, const void *buf, size_t len)
{
	uint32_t rec;
	unsigned char le[4];

	while (len > 0) {
		size_t n = len < CHUNK_MAX ? len : CHUNK_MAX;

		/* The bytes first: a record never points past the end of a log. */
		if (append(o->log[s], buf, n) < 0)
			return -1;
		rec = (uint32_t)n | (s == OUTPUT_STDERR ? ORDER_STDERR : 0);
		le[0] = rec & 0xff;
		le[1] = (rec >> 8) & 0xff;
		le[2] = (rec >> 16) & 0xff;
		le[3] = rec >> 24;
		if (append(o->order, le, sizeof(le)) < 0)
			return -1;
		buf = (const char *)buf + n;
		len -= n;
	}
	return 0;
}

int output_copy(struct output *o, enum output_stream s)
{
	char buf[CHUNK_MAX];
	ssize_t n;

	if (o->pipe[s] < 0)
		return 0;
	n = read(o->pipe[s], buf, sizeof(buf));
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		close(o->pipe[s]);
		o->pipe[s] = -1;
		return 0;
	}
	/* Nobody to tell if a log cannot be written: the job must not block on it. */
	output_write(o, s, buf, n);
	return n;
}

void output_drain(struct output *o)
{
	int s, rounds;

	/* Bounded: a process left in the vhost may hold the pipe and keep writing. */
	for (s = 0; s < 2; s++) {
		for (rounds = 0; rounds < 256; rounds++) {
			if (output_copy(o, s) <= 0)
				break;
		}
	}
}
