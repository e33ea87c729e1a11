/*
 * cohort-tls-dial: the CLI's TLS connection to a coordinator reached over TCP.
 *
 *   cohort-tls-dial HOST PORT CA_FILE [MUNGE_SOCKET PAYLOAD]
 *
 * Connects to HOST:PORT, speaks TLS 1.2 or later with ALPN "h2" (gRPC asks
 * for it), and accepts the server only if its certificate chains to CA_FILE
 * (and nothing else: not the system's roots) and names HOST, as an IP
 * address or a DNS name.  Then it writes one zero byte to stdout (the server
 * is verified: the caller may send) and relays stdin to the connection and
 * the connection to stdout, until either ends.  It presents no certificate of
 * its own: a user is not a daemon, and each call carries the user's MUNGE
 * credential instead.
 *
 * With MUNGE_SOCKET and PAYLOAD, once the server is verified, it also asks
 * the munged on MUNGE_SOCKET for a credential carrying PAYLOAD that only
 * root may decode (what `munge --string PAYLOAD --restrict-uid 0` makes) and
 * writes it after the zero byte, ended by a newline: the CLI's first call
 * goes out with it, without the CLI starting `munge` (a process started from
 * a JVM costs a short command a few milliseconds of CPU).  An empty line
 * when none could be made: the CLI then runs `munge`, which says why.
 *
 * Why a program: a CLI command is a fresh JVM, where setting up JSSE and
 * its first handshake cost about 0.25 s, more than the rest of the command;
 * OpenSSL does the same handshake in about a millisecond.
 *
 * Exits 0 when either side ended cleanly, 2 on a usage error, 3 when it
 * cannot connect, 4 when the server is not the cluster's (or TLS fails), 5
 * when the connection breaks, 6 when the server refuses the CLI after the
 * handshake (a daemons' port).  The one line on stderr says which.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <munge.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#define LOG_PREFIX ""
#include "log.h"
#include "util.h"

enum {
	EXIT_USAGE = 2,
	EXIT_CONNECT = 3,
	EXIT_TLS = 4,
	EXIT_BROKEN = 5,
	EXIT_NOT_CLIENT_PORT = 6,
};

/*
 * Name lookup, connect, handshake and the server's first record must end
 * within this, all together; after that a call's deadline is the CLI's.
 */
#define SETUP_TIMEOUT_S 10

static const char *setup_target;

static void setup_timed_out(int sig)
{
	static const char msg[] = "cohort-tls-dial: no connection within the set-up time to ";

	(void)sig;
	/* Only async-signal-safe calls here; a failed write leaves nothing else to try. */
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) >= 0 &&
	    write(STDERR_FILENO, setup_target, strlen(setup_target)) >= 0)
		(void)!write(STDERR_FILENO, "\n", 1);
	_exit(EXIT_CONNECT);
}

#define USAGE "usage: cohort-tls-dial HOST PORT CA_FILE [MUNGE_SOCKET PAYLOAD]\n"

/* The text of OpenSSL's newest error, or `fallback` when it queued none. */
static const char *ssl_error(const char *fallback)
{
	static char buf[256];
	unsigned long e = ERR_get_error();

	if (!e)
		return fallback;
	ERR_error_string_n(e, buf, sizeof(buf));
	return buf;
}

static void set_timeouts(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/* A connected TCP socket to host:port (each address in turn), or -1. */
static int dial(const char *host, const char *port)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	int fd = -1, rc, err = 0;

	rc = getaddrinfo(host, port, &hints, &res);
	if (rc) {
		pr_err("cannot resolve %s: %s", host, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		/* On Linux SO_SNDTIMEO bounds connect() too. */
		set_timeouts(fd, SETUP_TIMEOUT_S);
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
			/*
			 * gRPC writes a call's HEADERS and DATA frames apart: with Nagle's
			 * algorithm the second waits for the server's delayed ACK, 40 ms.
			 */
			setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &(int){ 1 }, sizeof(int));
			/* A coordinator's machine that vanishes ends a long `wait` or `run`. */
			setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &(int){ 1 }, sizeof(int));
			break;
		}
		err = errno == EINPROGRESS ? ETIMEDOUT : errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		pr_err("cannot connect to %s:%s: %s", host, port, strerror(err));
	return fd;
}

/* A client context that trusts ca_file alone, or NULL. */
static SSL_CTX *client_context(const char *ca_file)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		pr_err("TLS: %s", ssl_error("cannot create a context"));
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
		pr_err("cannot read the cluster CA's certificate %s: %s", ca_file,
		       ssl_error("no certificate in it"));
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Writes may be partial and retried from a moved buffer (the relay's). */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	return ctx;
}

/* Whether the server's last alert asked for a client certificate. */
static bool wants_certificate(void)
{
	int reason = ERR_GET_REASON(ERR_peek_error());

	return reason == SSL_R_SSLV3_ALERT_BAD_CERTIFICATE ||
	       reason == SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED;
}

static void daemons_port(const char *host, const char *port)
{
	pr_err("%s:%s wants a client certificate, which the CLI does not have: it is a daemons' "
	       "port; give the coordinator's client port (its --listen address)", host, port);
}

/*
 * The TLS session over fd with the server named host verified, or NULL with
 * *status the exit status that says why.
 */
static SSL *handshake(SSL_CTX *ctx, int fd, const char *host, const char *port, int *status)
{
	static const unsigned char h2[] = { 2, 'h', '2' };
	unsigned char ip[sizeof(struct in6_addr)];
	const unsigned char *proto;
	unsigned int proto_len;
	X509_VERIFY_PARAM *param;
	SSL *ssl = SSL_new(ctx);
	bool is_ip = inet_pton(AF_INET, host, ip) == 1 || inet_pton(AF_INET6, host, ip) == 1;
	long verified;
	char first;

	*status = EXIT_TLS;
	if (!ssl) {
		pr_err("TLS: %s", ssl_error("cannot create a session"));
		return NULL;
	}
	param = SSL_get0_param(ssl);
	/* As strict as the JDK's verifier: the subject alternative names only, no partial wildcards. */
	X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NEVER_CHECK_SUBJECT |
						       X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* The certificate must name what the user asked for: an IP address or a host name. */
	if (is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, host) != 1
		  : X509_VERIFY_PARAM_set1_host(param, host, 0) != 1 ||
			    SSL_set_tlsext_host_name(ssl, host) != 1) {
		pr_err("TLS: cannot check the server's name against %s", host);
		goto fail;
	}
	if (SSL_set_alpn_protos(ssl, h2, sizeof(h2)) != 0 || SSL_set_fd(ssl, fd) != 1) {
		pr_err("TLS: %s", ssl_error("cannot set up the session"));
		goto fail;
	}
	ERR_clear_error();
	if (SSL_connect(ssl) != 1) {
		verified = SSL_get_verify_result(ssl);
		if (verified != X509_V_OK) {
			pr_err("%s:%s is not the cluster's coordinator (its certificate: %s)", host,
			       port, X509_verify_cert_error_string(verified));
		} else if (wants_certificate()) {
			/* TLS 1.2 refuses a missing client certificate in the handshake. */
			*status = EXIT_NOT_CLIENT_PORT;
			daemons_port(host, port);
		} else {
			pr_err("TLS handshake with %s:%s failed: %s", host, port,
			       ssl_error("the server closed the connection"));
		}
		goto fail;
	}
	SSL_get0_alpn_selected(ssl, &proto, &proto_len);
	if (proto_len != 2 || memcmp(proto, "h2", 2) != 0) {
		pr_err("%s:%s does not speak HTTP/2 over TLS (no ALPN h2): not a coordinator", host,
		       port);
		goto fail;
	}
	/*
	 * With TLS 1.3 a server checks the client's certificate after the
	 * handshake: a daemons' port, which wants one, refuses only now.  The
	 * coordinator's first word is HTTP/2's SETTINGS: wait for it.
	 */
	ERR_clear_error();
	errno = 0;
	if (SSL_peek(ssl, &first, 1) <= 0) {
		if (wants_certificate()) {
			*status = EXIT_NOT_CLIENT_PORT;
			daemons_port(host, port);
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			pr_err("%s:%s said nothing within %d s of the TLS handshake: not a coordinator",
			       host, port, SETUP_TIMEOUT_S);
		} else {
			pr_err("%s:%s closed the connection after the TLS handshake: %s", host, port,
			       ssl_error("no reason given"));
		}
		goto fail;
	}
	return ssl;
fail:
	SSL_free(ssl);
	return NULL;
}

/*
 * A credential for payload that only root may decode, from the munged on
 * socket (malloc'd), or NULL.  libmunge is loaded here rather than linked:
 * without MUNGE this program still connects, and the CLI's own `munge`
 * gives the error that says what to set up.
 */
static char *munge_credential(const char *socket, const char *payload)
{
	__typeof__(munge_ctx_create) *ctx_create;
	__typeof__(munge_ctx_set) *ctx_set;
	__typeof__(munge_ctx_destroy) *ctx_destroy;
	__typeof__(munge_encode) *encode;
	void *lib = dlopen("libmunge.so.2", RTLD_NOW | RTLD_LOCAL);
	munge_ctx_t ctx;
	char *cred = NULL;

	if (!lib)
		return NULL;
	ctx_create = (__typeof__(ctx_create))dlsym(lib, "munge_ctx_create");
	ctx_set = (__typeof__(ctx_set))dlsym(lib, "munge_ctx_set");
	ctx_destroy = (__typeof__(ctx_destroy))dlsym(lib, "munge_ctx_destroy");
	encode = (__typeof__(encode))dlsym(lib, "munge_encode");
	if (!ctx_create || !ctx_set || !ctx_destroy || !encode)
		return NULL;
	ctx = ctx_create();
	if (!ctx)
		return NULL;
	if (ctx_set(ctx, MUNGE_OPT_SOCKET, socket) != EMUNGE_SUCCESS ||
	    ctx_set(ctx, MUNGE_OPT_UID_RESTRICTION, (uid_t)0) != EMUNGE_SUCCESS ||
	    encode(&cred, ctx, payload, (int)strlen(payload)) != EMUNGE_SUCCESS) {
		free(cred);
		cred = NULL;
	}
	ctx_destroy(ctx);
	return cred;
}

/*
 * Tells the caller the server is verified (a zero byte) and, when asked,
 * gives it the credential for its first call (a line, empty if none).
 */
static int verified(const char *munge_socket, const char *payload)
{
	char *cred = payload ? munge_credential(munge_socket, payload) : NULL;
	int rc = write_full(STDOUT_FILENO, "", 1);

	if (rc >= 0 && cred)
		rc = write_full(STDOUT_FILENO, cred, strlen(cred));
	if (rc >= 0 && payload)
		rc = write_full(STDOUT_FILENO, "\n", 1);
	free(cred);
	return rc;
}

/*
 * What the last SSL_read or SSL_write on a non-blocking socket asks for:
 * 1 to wait for the socket (want updated), 0 at the peer's close_notify,
 * -1 on an error.
 */
static int ssl_wait(SSL *ssl, int rc, short *want)
{
	switch (SSL_get_error(ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		*want |= POLLIN;
		return 1;
	case SSL_ERROR_WANT_WRITE:
		*want |= POLLOUT;
		return 1;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	case SSL_ERROR_SYSCALL:
		if (!ERR_peek_error())
			pr_err("connection to the coordinator lost: %s",
			       errno ? strerror(errno) : "closed without TLS close_notify");
		else
			pr_err("connection to the coordinator lost: %s", ssl_error(""));
		return -1;
	default:
		pr_err("TLS error: %s", ssl_error("unknown"));
		return -1;
	}
}

/*
 * Relay stdin to ssl and ssl to stdout on one thread (OpenSSL does not allow
 * a read and a write of one session on two), the socket non-blocking.
 */
static int relay(SSL *ssl, int fd)
{
	char up[16384], down[16384];
	size_t up_len = 0, up_off = 0;
	bool stdin_open = true;

	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		pr_perror("fcntl");
		return EXIT_BROKEN;
	}
	for (;;) {
		short want = POLLIN; /* the server may always speak */
		struct pollfd p[2];
		int rc, n;

		/* Everything the session has decrypted, to stdout. */
		for (;;) {
			ERR_clear_error();
			errno = 0;
			n = SSL_read(ssl, down, sizeof(down));
			if (n <= 0)
				break;
			if (write_full(STDOUT_FILENO, down, n) < 0)
				return 0; /* the CLI is gone: nothing left to do */
		}
		rc = ssl_wait(ssl, n, &want);
		if (rc <= 0)
			return rc == 0 ? 0 : EXIT_BROKEN;

		/* What stdin gave, to the session. */
		while (up_off < up_len) {
			ERR_clear_error();
			errno = 0;
			n = SSL_write(ssl, up + up_off, up_len - up_off);
			if (n <= 0) {
				rc = ssl_wait(ssl, n, &want);
				if (rc <= 0)
					return rc == 0 ? 0 : EXIT_BROKEN;
				break;
			}
			up_off += n;
		}
		if (up_off == up_len && !stdin_open) {
			SSL_shutdown(ssl); /* close_notify; the server then closes */
			return 0;
		}

		p[0] = (struct pollfd){ .fd = fd, .events = want };
		p[1] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
		/* Read stdin only once the last of it has gone out. */
		if (poll(p, up_off < up_len ? 1 : 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("poll");
			return EXIT_BROKEN;
		}
		if (up_off == up_len && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
			ssize_t got = read(STDIN_FILENO, up, sizeof(up));

			if (got < 0 && errno != EINTR && errno != EAGAIN) {
				pr_perror("read stdin");
				return EXIT_BROKEN;
			}
			if (got == 0)
				stdin_open = false;
			up_off = 0;
			up_len = got > 0 ? (size_t)got : 0;
		}
	}
}

int main(int argc, char **argv)
{
	SSL_CTX *ctx;
	SSL *ssl;
	int fd, rc;

	log_init("cohort-tls-dial");
	log_set_fd(STDERR_FILENO);
	if (argc != 4 && argc != 6) {
		fputs(USAGE, stderr);
		return EXIT_USAGE;
	}
	/* A closed stdout is seen as EPIPE in the relay. */
	signal(SIGPIPE, SIG_IGN);

	setup_target = argv[1];
	signal(SIGALRM, setup_timed_out);
	alarm(SETUP_TIMEOUT_S);
	ctx = client_context(argv[3]);
	if (!ctx)
		return EXIT_TLS;
	fd = dial(argv[1], argv[2]);
	if (fd < 0)
		return EXIT_CONNECT;
	ssl = handshake(ctx, fd, argv[1], argv[2], &rc);
	if (!ssl)
		return rc;
	alarm(0);
	set_timeouts(fd, 0); /* the relay waits in poll, as long as the CLI keeps it */
	if (verified(argc == 6 ? argv[4] : NULL, argc == 6 ? argv[5] : NULL) < 0)
		return 0; /* the caller is gone */
	rc = relay(ssl, fd);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return rc;
}
