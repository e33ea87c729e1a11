/*
 * tcpstream — the rate of one plain TCP stream between two network namespaces: the path a partner
 * copy takes between two nodes of the emulated cluster, with nothing of Cohort on it.
 *
 * usage: tcpstream FROM_NETNS TO_NETNS TO_ADDR SIZE_MB
 *
 * Listens on TO_ADDR (an address of TO_NETNS, any free port) from inside TO_NETNS; a child enters
 * FROM_NETNS, connects and writes SIZE_MB MiB; the parent reads them to the end and prints
 * "bytes N ms T mb_s R" (from the accept to the end of the stream; MB = 10^6 bytes).
 * Namespaces are the names `ip netns` gives (/run/netns/NAME). Needs root.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)

static int enter(const char *netns)
{
	char path[256];
	snprintf(path, sizeof(path), "/run/netns/%s", netns);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "tcpstream: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	int rc = setns(fd, CLONE_NEWNET);
	if (rc < 0)
		fprintf(stderr, "tcpstream: cannot enter %s: %s\n", netns, strerror(errno));
	close(fd);
	return rc;
}

/* The child: writes size bytes to addr from inside from_ns. */
static int send_all(const char *from_ns, struct sockaddr_in *addr, long long size)
{
	int rc = -1;
	int s = -1;
	char *buf = calloc(1, CHUNK);
	if (buf == NULL || enter(from_ns) < 0)
		goto out;
	s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)addr, sizeof(*addr)) < 0) {
		fprintf(stderr, "tcpstream: cannot connect: %s\n", strerror(errno));
		goto out;
	}
	for (long long sent = 0; sent < size;) {
		ssize_t n = write(s, buf, size - sent < CHUNK ? (size_t)(size - sent) : CHUNK);
		if (n < 0) {
			fprintf(stderr, "tcpstream: write: %s\n", strerror(errno));
			goto out;
		}
		sent += n;
	}
	rc = 0;
out:
	if (s >= 0)
		close(s);
	free(buf);
	return rc;
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc != 5 || atol(argv[4]) <= 0) {
		fprintf(stderr, "usage: tcpstream FROM_NETNS TO_NETNS TO_ADDR SIZE_MB\n");
		return 1;
	}
	long long size = atoll(argv[4]) << 20;
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	if (inet_pton(AF_INET, argv[3], &addr.sin_addr) != 1) {
		fprintf(stderr, "tcpstream: not an IPv4 address: %s\n", argv[3]);
		return 1;
	}
	if (enter(argv[2]) < 0)
		return 1;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&addr, sizeof(addr)) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&addr, &len) < 0) {
		fprintf(stderr, "tcpstream: cannot listen on %s: %s\n", argv[3], strerror(errno));
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		fprintf(stderr, "tcpstream: fork: %s\n", strerror(errno));
		return 1;
	}
	if (child == 0) {
		close(l);
		_exit(send_all(argv[1], &addr, size) == 0 ? 0 : 1);
	}
	int c = accept(l, NULL, NULL);
	if (c < 0) {
		fprintf(stderr, "tcpstream: accept: %s\n", strerror(errno));
		return 1;
	}
	double t0 = now_ms();
	char *buf = malloc(CHUNK);
	long long got = 0;
	ssize_t n;
	while (buf != NULL && (n = read(c, buf, CHUNK)) > 0)
		got += n;
	double ms = now_ms() - t0;
	int status = 0;
	waitpid(child, &status, 0);
	free(buf);
	if (got != size || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "tcpstream: received %lld of %lld bytes\n", got, size);
		return 1;
	}
	printf("bytes %lld ms %.1f mb_s %.1f\n", got, ms, got / 1e3 / ms);
	return 0;
}
