/* The spawn service of a vhost's pid 1 (protocol in spawn_proto.h). */
#ifndef COHORT_SPAWN_H
#define COHORT_SPAWN_H

#include <signal.h>

#include "owner.h"

/* What a spawned child needs from pid 1. */
struct spawn_ctx {
	const char *token;
	const struct owner *owner;	/* whom spawned commands run as */
	const char *cwd;
	const sigset_t *child_sigmask;	/* the mask to exec children with */
	const int *close_fds;		/* pid 1's fds, closed in children */
	int nr_close_fds;
};

/* Listen on TCP 0.0.0.0:port; the socket is non-blocking and CLOEXEC. */
int spawn_listen(int port);

/*
 * Accept one connection and fork a child that becomes the job's owner,
 * reads the request, checks the token and execs /bin/sh -c CMD on the
 * connection.  pid 1 keeps
 * no fd of the connection.  Returns 0 (also when there was nothing to
 * accept) or -1.
 */
int spawn_accept(int listen_fd, const struct spawn_ctx *ctx);

#endif
