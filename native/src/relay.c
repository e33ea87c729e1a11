#include <poll.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PREFIX ""
#include "log.h"
#include "relay.h"
#include "util.h"

#define RELAY_BUF (64 * 1024)

struct relay_state {
	char up[RELAY_BUF];	/* stdin -> socket */
	size_t up_off, up_len;
	bool stdin_done;	/* no more stdin to read */
	bool shut_wr;		/* shutdown(SHUT_WR) done */
	char down[RELAY_BUF];	/* socket -> stdout */
	bool stdout_broken;
};

static void read_stdin(struct relay_state *r)
{
	ssize_t n;

	do {
		n = read(0, r->up, sizeof(r->up));
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {		/* EOF, or a stdin that cannot be read: same thing */
		r->stdin_done = true;
		return;
	}
	r->up_off = 0;
	r->up_len = n;
}

/* Send what is buffered without blocking, so the socket is always drained too. */
static int send_up(struct relay_state *r, int sock)
{
	ssize_t n;

	n = send(sock, r->up + r->up_off, r->up_len - r->up_off,
		 MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		if (errno == EPIPE) {	/* the remote side closed its input */
			r->up_len = r->up_off = 0;
			r->stdin_done = r->shut_wr = true;
			return 0;
		}
		pr_perror("send to the remote command");
		return -1;
	}
	r->up_off += n;
	if (r->up_off == r->up_len)
		r->up_off = r->up_len = 0;
	return 0;
}

/* Returns 1 at EOF, 0 after copying, -1 on error. */
static int recv_down(struct relay_state *r, int sock)
{
	ssize_t n;

	n = recv(sock, r->down, sizeof(r->down), MSG_DONTWAIT);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		pr_perror("receive from the remote command");
		return -1;
	}
	if (n == 0)
		return 1;
	if (!r->stdout_broken && write_full(1, r->down, n) < 0)
		r->stdout_broken = true;
	return 0;
}

int relay(int sock)
{
	static struct relay_state r;	/* 128 KiB: off the stack */
	struct pollfd pfd[2];
	int ret;

	for (;;) {
		if (r.stdin_done && r.up_len == 0 && !r.shut_wr) {
			r.shut_wr = true;
			if (shutdown(sock, SHUT_WR) < 0 && errno != ENOTCONN) {
				pr_perror("shutdown");
				return -1;
			}
		}
		pfd[0].fd = sock;
		pfd[0].events = POLLIN | (r.up_len ? POLLOUT : 0);
		pfd[1].fd = (r.stdin_done || r.up_len) ? -1 : 0;
		pfd[1].events = POLLIN;

		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("poll");
			return -1;
		}
		if (pfd[1].revents & POLLNVAL)
			r.stdin_done = true;
		else if (pfd[1].revents)
			read_stdin(&r);
		if (r.up_len && (pfd[0].revents & (POLLOUT | POLLERR | POLLHUP)) &&
		    send_up(&r, sock) < 0)
			return -1;
		if (pfd[0].revents & (POLLIN | POLLERR | POLLHUP)) {
			ret = recv_down(&r, sock);
			if (ret != 0)
				return ret > 0 ? 0 : -1;
		}
	}
}
