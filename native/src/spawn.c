#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PREFIX "spawn: "
#include "log.h"
#include "spawn.h"
#include "spawn_proto.h"

/* How long a client may take for each byte of its request. */
#define SPAWN_READ_TIMEOUT_MS 10000
#define SPAWN_BACKLOG 128

int spawn_listen(int port)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET,
		.sin_port = htons(port),
		.sin_addr.s_addr = htonl(INADDR_ANY),
	};
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		pr_perror("create the listening socket");
		return -1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0) {
		pr_perror("set SO_REUSEADDR");
		goto err;
	}
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		pr_perror("bind 0.0.0.0:%d", port);
		goto err;
	}
	if (listen(fd, SPAWN_BACKLOG) < 0) {
		pr_perror("listen on 0.0.0.0:%d", port);
		goto err;
	}
	return fd;
err:
	close(fd);
	return -1;
}

static void reply(int fd, const char *prefix, const char *text)
{
	char line[SPAWN_LINE_MAX + 1];
	int len;

	len = snprintf(line, sizeof(line), "%s%s\n", prefix, text);
	if (len >= (int)sizeof(line))
		len = sizeof(line) - 1;
	if (send(fd, line, len, MSG_NOSIGNAL) < 0)
		pr_perror("send the reply");
}

/* In the forked child: serve one request, then exec it or exit. */
static void __attribute__((noreturn))
serve(int conn, const struct spawn_ctx *ctx, const char *peer)
{
	struct spawn_request req;
	enum owner_failure f;
	const char *reason;
	char why[256];
	int i, err;

	for (i = 0; i < ctx->nr_close_fds; i++)
		close(ctx->close_fds[i]);
	sigprocmask(SIG_SETMASK, ctx->child_sigmask, NULL);
	if (setsid() < 0)
		pr_perror("setsid");
	/*
	 * The owner's from the start: the request, which comes from the
	 * network, is read and its command run with the job's credentials,
	 * never root's.
	 */
	f = owner_become(ctx->owner, &err);
	if (f != OWNER_OK) {
		owner_describe(ctx->owner, f, err, why, sizeof(why));
		pr_err("request from %s refused: %s", peer, why);
		reply(conn, SPAWN_ERROR, why);
		_exit(1);
	}

	if (spawn_read_request(conn, &req, SPAWN_READ_TIMEOUT_MS, &reason) < 0) {
		pr_warn("request from %s refused: %s", peer, reason);
		reply(conn, SPAWN_ERROR, reason);
		_exit(1);
	}
	if (!ct_equal(req.token, strlen(req.token), ctx->token, strlen(ctx->token))) {
		pr_warn("request from %s refused: bad token", peer);
		reply(conn, SPAWN_ERROR, "bad token");
		_exit(1);
	}
	reply(conn, SPAWN_OK, "");

	for (i = 0; i < 3; i++) {
		if (dup2(conn, i) < 0) {
			pr_perror("dup2 the connection onto fd %d", i);
			_exit(1);
		}
	}
	if (conn > 2)
		close(conn);
	if (chdir(ctx->cwd) < 0 && chdir("/") < 0)
		pr_perror("chdir /");

	execl("/bin/sh", "sh", "-c", req.cmd, (char *)NULL);
	pr_perror("exec /bin/sh");
	dprintf(2, "cohort-init: exec /bin/sh: %s\n", strerror(errno));
	_exit(127);
}

int spawn_accept(int listen_fd, const struct spawn_ctx *ctx)
{
	struct sockaddr_in addr;
	socklen_t addrlen = sizeof(addr);
	char peer[INET_ADDRSTRLEN + 8];
	pid_t pid;
	int conn;

	conn = accept4(listen_fd, (struct sockaddr *)&addr, &addrlen, SOCK_CLOEXEC);
	if (conn < 0) {
		switch (errno) {
		case EAGAIN:
		case EINTR:
		case ECONNABORTED:
		case EPROTO:
			return 0;	/* nothing to accept, or the client gave up */
		}
		pr_perror("accept");
		return -1;
	}
	snprintf(peer, sizeof(peer), "%s:%d", inet_ntoa(addr.sin_addr), ntohs(addr.sin_port));

	pid = fork();
	if (pid < 0) {
		pr_perror("fork for the request from %s", peer);
		close(conn);
		return -1;
	}
	if (pid == 0)
		serve(conn, ctx, peer);
	close(conn);
	return 0;
}
