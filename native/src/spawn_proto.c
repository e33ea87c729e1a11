#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define LOG_PREFIX "spawn: "
#include "log.h"
#include "spawn_proto.h"

static int wait_readable(int fd, int timeout_ms, const char **reason)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	int n;

	if (timeout_ms < 0)
		return 0;
	do {
		n = poll(&pfd, 1, timeout_ms);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		*reason = "poll failed";
		return -1;
	}
	if (n == 0) {
		*reason = "timed out reading the request";
		return -1;
	}
	return 0;
}

int spawn_read_line(int fd, char *buf, size_t size, int timeout_ms,
		    const char **reason)
{
	size_t len = 0;
	ssize_t n;
	char c;

	for (;;) {
		if (wait_readable(fd, timeout_ms, reason) < 0)
			return -1;
		n = read(fd, &c, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			*reason = "read failed";
			return -1;
		}
		if (n == 0) {
			*reason = "connection closed in the header";
			return -1;
		}
		if (c == '\n')
			break;
		if (len + 1 >= size) {
			*reason = "header line too long";
			return -1;
		}
		buf[len++] = c;
	}
	buf[len] = '\0';
	return len;
}

static int parse_length(const char *s, size_t *len)
{
	char *end;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v == 0 || v > SPAWN_CMD_MAX)
		return -1;
	*len = v;
	return 0;
}

int spawn_read_request(int fd, struct spawn_request *req, int timeout_ms,
		       const char **reason)
{
	char line[SPAWN_LINE_MAX + 1];
	size_t got = 0;
	ssize_t n;
	int len;

	req->cmd = NULL;
	if (spawn_read_line(fd, line, sizeof(line), timeout_ms, reason) < 0)
		return -1;
	if (strcmp(line, SPAWN_MAGIC)) {
		*reason = "not a COHORT-SPAWN 1 request";
		return -1;
	}

	len = spawn_read_line(fd, line, sizeof(line), timeout_ms, reason);
	if (len < 0)
		return -1;
	if (strncmp(line, "token ", 6) || len == 6 || len - 6 > TOKEN_MAX ||
	    strpbrk(line + 6, " \t\r")) {
		*reason = "malformed token line";
		return -1;
	}
	memcpy(req->token, line + 6, len - 6 + 1);

	if (spawn_read_line(fd, line, sizeof(line), timeout_ms, reason) < 0)
		return -1;
	if (strncmp(line, "cmd ", 4) || parse_length(line + 4, &req->cmd_len) < 0) {
		*reason = "malformed cmd line";
		return -1;
	}

	req->cmd = malloc(req->cmd_len + 1);
	if (!req->cmd) {
		*reason = "out of memory";
		return -1;
	}
	while (got < req->cmd_len) {
		if (wait_readable(fd, timeout_ms, reason) < 0)
			goto err;
		n = read(fd, req->cmd + got, req->cmd_len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			*reason = "connection closed in the command";
			goto err;
		}
		got += n;
	}
	req->cmd[got] = '\0';
	if (memchr(req->cmd, '\0', got)) {
		*reason = "NUL byte in the command";
		goto err;
	}
	return 0;
err:
	free(req->cmd);
	req->cmd = NULL;
	return -1;
}

int spawn_send_request(int fd, const char *token, const char *cmd, size_t len)
{
	char header[SPAWN_LINE_MAX * 3];
	int hlen;

	hlen = snprintf(header, sizeof(header), SPAWN_MAGIC "\ntoken %s\ncmd %zu\n",
			token, len);
	if (hlen >= (int)sizeof(header)) {
		pr_err("token too long");
		return -1;
	}
	if (write_full(fd, header, hlen) < 0 || write_full(fd, cmd, len) < 0) {
		pr_perror("send the spawn request");
		return -1;
	}
	return 0;
}
