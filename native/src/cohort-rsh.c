/*
 * cohort-rsh: the rsh/ssh-compatible agent mpirun uses to start its
 * daemons in other vhosts.
 *
 *   cohort-rsh [-p PORT] HOST WORD...
 *
 * Joins WORD... with single spaces (like ssh), asks the spawn service of
 * the vhost at HOST to run it with /bin/sh -c, and relays stdio until the
 * remote side closes the connection.  The token comes from $COHORT_TOKEN
 * or the file named by $COHORT_TOKEN_FILE; the port from -p, else
 * $COHORT_SPAWN_PORT, else 7207.  Exits 0 when the remote side closes,
 * 255 (like ssh) when it cannot get the command started.
 */
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define LOG_PREFIX ""
#include "log.h"
#include "relay.h"
#include "spawn_proto.h"
#include "util.h"

#define EXIT_RSH_ERROR 255
#define USAGE "usage: cohort-rsh [-p PORT] HOST WORD...\n"

struct rsh_opts {
	const char *port;
	const char *host;
	char *cmd;
	size_t cmd_len;
	char token[TOKEN_MAX + 1];
};

static int check_port(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535) {
		pr_err("bad port: %s", s);
		return -1;
	}
	return 0;
}

static int get_token(struct rsh_opts *o)
{
	const char *env = getenv("COHORT_TOKEN");

	if (env && env[0]) {
		if (strlen(env) > TOKEN_MAX || strpbrk(env, " \t\r\n")) {
			pr_err("COHORT_TOKEN: not a token");
			return -1;
		}
		snprintf(o->token, sizeof(o->token), "%s", env);
		return 0;
	}
	env = getenv("COHORT_TOKEN_FILE");
	if (env && env[0])
		return read_token_file(env, o->token, sizeof(o->token));
	pr_err("set COHORT_TOKEN or COHORT_TOKEN_FILE");
	return -1;
}

/* Join the words with single spaces, as ssh does. */
static int join_words(int n, char **words, struct rsh_opts *o)
{
	size_t len = 0;
	char *p;
	int i;

	for (i = 0; i < n; i++)
		len += strlen(words[i]) + 1;
	if (len == 1) {
		pr_err("empty command");
		return -1;
	}
	if (len - 1 > SPAWN_CMD_MAX) {
		pr_err("command longer than %d bytes", SPAWN_CMD_MAX);
		return -1;
	}
	o->cmd = p = malloc(len);
	if (!p) {
		pr_err("out of memory");
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (i)
			*p++ = ' ';
		memcpy(p, words[i], strlen(words[i]));
		p += strlen(words[i]);
	}
	*p = '\0';
	o->cmd_len = len - 1;
	return 0;
}

static int parse_args(int argc, char **argv, struct rsh_opts *o)
{
	int i = 1;

	o->port = getenv("COHORT_SPAWN_PORT");
	if (!o->port || !o->port[0])
		o->port = "7207";
	if (i < argc && !strncmp(argv[i], "-p", 2)) {
		if (argv[i][2]) {
			o->port = argv[i] + 2;
		} else if (i + 1 < argc) {
			o->port = argv[++i];
		} else {
			pr_err("-p needs a port");
			return -1;
		}
		i++;
	}
	if (check_port(o->port) < 0)
		return -1;
	if (argc - i < 2) {
		fputs(USAGE, stderr);
		return -1;
	}
	o->host = argv[i++];
	return join_words(argc - i, argv + i, o);
}

static int connect_to(const struct rsh_opts *o)
{
	struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res, *ai;
	int fd = -1, err, saved = 0;

	err = getaddrinfo(o->host, o->port, &hints, &res);
	if (err) {
		pr_err("%s: %s", o->host, gai_strerror(err));
		return -1;
	}
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			saved = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		saved = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		errno = saved;
		pr_perror("connect to %s port %s", o->host, o->port);
	}
	return fd;
}

/* Send the request and wait for the verdict: 0 if the command runs. */
static int request_spawn(int fd, const struct rsh_opts *o)
{
	char line[SPAWN_LINE_MAX + 1];
	const char *reason;

	if (spawn_send_request(fd, o->token, o->cmd, o->cmd_len) < 0)
		return -1;
	if (spawn_read_line(fd, line, sizeof(line), -1, &reason) < 0) {
		pr_err("%s: no answer from the spawn service: %s", o->host, reason);
		return -1;
	}
	if (!strcmp(line, SPAWN_OK))
		return 0;
	if (!strncmp(line, SPAWN_ERROR, strlen(SPAWN_ERROR)))
		pr_err("%s: spawn refused: %s", o->host, line + strlen(SPAWN_ERROR));
	else
		pr_err("%s: not a spawn service (answer: %.80s)", o->host, line);
	return -1;
}

int main(int argc, char **argv)
{
	struct rsh_opts opts = { 0 };
	int fd, ret;

	log_init("cohort-rsh");
	/* Socket writes use MSG_NOSIGNAL; this covers stdout and the header. */
	signal(SIGPIPE, SIG_IGN);

	if (parse_args(argc, argv, &opts) < 0 || get_token(&opts) < 0)
		exit(EXIT_RSH_ERROR);
	fd = connect_to(&opts);
	if (fd < 0)
		exit(EXIT_RSH_ERROR);
	if (request_spawn(fd, &opts) < 0) {
		close(fd);
		exit(EXIT_RSH_ERROR);
	}
	ret = relay(fd);
	close(fd);
	exit(ret < 0 ? EXIT_RSH_ERROR : 0);
}
