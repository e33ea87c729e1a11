/*
 * cohort-init: start a virtual host (vhost) and run its pid 1.
 *
 *   cohort-init --hostname NAME --log PATH --status PATH [--cwd DIR]
 *               [--err-log PATH --order PATH] [--stdin PATH]
 *               [--spawn-port PORT --token-file PATH]
 *               [--uid UID --gid GID --groups G1,G2...] -- CMD [ARGS...]
 *
 * See README.md for the behaviour and the spawn protocol.
 */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define LOG_PREFIX ""
#include "launcher.h"
#include "log.h"
#include "mounts.h"

#define USAGE \
	"usage: cohort-init --hostname NAME --log PATH --status PATH [--cwd DIR]\n" \
	"                   [--err-log PATH --order PATH] [--stdin PATH]\n" \
	"                   [--spawn-port PORT --token-file PATH]\n" \
	"                   [--uid UID --gid GID --groups G1,G2...] -- CMD [ARGS...]\n"

enum {
	OPT_HOSTNAME = 256,
	OPT_LOG,
	OPT_STATUS,
	OPT_CWD,
	OPT_ERR_LOG,
	OPT_ORDER,
	OPT_STDIN,
	OPT_SPAWN_PORT,
	OPT_TOKEN_FILE,
	OPT_UID,
	OPT_GID,
	OPT_GROUPS,
	OPT_HELP,
	OPT_NAMESPACES_READY,
};

static const struct option long_opts[] = {
	{ "hostname", required_argument, NULL, OPT_HOSTNAME },
	{ "log", required_argument, NULL, OPT_LOG },
	{ "status", required_argument, NULL, OPT_STATUS },
	{ "cwd", required_argument, NULL, OPT_CWD },
	{ "err-log", required_argument, NULL, OPT_ERR_LOG },
	{ "order", required_argument, NULL, OPT_ORDER },
	{ "stdin", required_argument, NULL, OPT_STDIN },
	{ "spawn-port", required_argument, NULL, OPT_SPAWN_PORT },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "uid", required_argument, NULL, OPT_UID },
	{ "gid", required_argument, NULL, OPT_GID },
	{ "groups", required_argument, NULL, OPT_GROUPS },
	{ "help", no_argument, NULL, OPT_HELP },
	{ NAMESPACES_READY_OPT, no_argument, NULL, OPT_NAMESPACES_READY },
	{ NULL, 0, NULL, 0 },
};

static int parse_port(const char *s, int *port)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < 1 || v > 65535) {
		pr_err("bad port: %s", s);
		return -1;
	}
	*port = v;
	return 0;
}

/* Make *path absolute; a log or status file must also be visible from the node. */
static int fix_path(char **path, const char *what, bool node_visible)
{
	char *abs = absolute_path(*path);

	if (!abs)
		return -1;
	*path = abs;
	if (node_visible && path_hidden_in_vhost(abs)) {
		pr_err("--%s %s: the vhost has its own /tmp, /dev/shm, /dev/pts, /proc and /sys; "
		       "use a path the node can see", what, abs);
		return -1;
	}
	return 0;
}

static int parse_args(int argc, char **argv, struct init_opts *o)
{
	bool uid = false, gid = false, groups = false;
	char cwd[PATH_MAX];
	unsigned int id;
	int c;

	while ((c = getopt_long(argc, argv, "+", long_opts, NULL)) != -1) {
		switch (c) {
		case OPT_HOSTNAME:
			o->hostname = optarg;
			break;
		case OPT_LOG:
			o->log_path = optarg;
			break;
		case OPT_STATUS:
			o->status_path = optarg;
			break;
		case OPT_CWD:
			o->cwd = optarg;
			break;
		case OPT_ERR_LOG:
			o->err_log_path = optarg;
			break;
		case OPT_ORDER:
			o->order_path = optarg;
			break;
		case OPT_STDIN:
			o->stdin_path = optarg;
			break;
		case OPT_SPAWN_PORT:
			if (parse_port(optarg, &o->spawn_port) < 0)
				return -1;
			break;
		case OPT_TOKEN_FILE:
			o->token_file = optarg;
			break;
		case OPT_UID:
			if (owner_parse_id(optarg, &id) < 0)
				return -1;
			o->owner.uid = id;
			uid = true;
			break;
		case OPT_GID:
			if (owner_parse_id(optarg, &id) < 0)
				return -1;
			o->owner.gid = id;
			gid = true;
			break;
		case OPT_GROUPS:
			if (owner_parse_groups(optarg, &o->owner) < 0)
				return -1;
			groups = true;
			break;
		case OPT_NAMESPACES_READY:
			o->namespaces_ready = true;
			break;
		case OPT_HELP:
			fputs(USAGE, stdout);
			return 1;
		default:
			return -1;
		}
	}
	if (!o->hostname || !o->log_path || !o->status_path || optind >= argc) {
		pr_err("--hostname, --log, --status and a command are required");
		return -1;
	}
	if (!o->hostname[0] || strlen(o->hostname) > HOST_NAME_MAX) {
		pr_err("bad hostname: '%s'", o->hostname);
		return -1;
	}
	if (!o->err_log_path != !o->order_path) {
		pr_err("--err-log and --order go together");
		return -1;
	}
	/* All three or none: half an identity would leave the job with some of root's. */
	if (uid != gid || gid != groups) {
		pr_err("--uid, --gid and --groups go together");
		return -1;
	}
	o->owner.set = uid;
	if (!o->spawn_port != !o->token_file) {
		pr_err("--spawn-port and --token-file go together");
		return -1;
	}
	if (!o->cwd) {
		if (!getcwd(cwd, sizeof(cwd))) {
			pr_perror("getcwd");
			return -1;
		}
		o->cwd = strdup(cwd);
		if (!o->cwd) {
			pr_err("out of memory");
			return -1;
		}
	}
	if (fix_path(&o->log_path, "log", true) < 0 ||
	    fix_path(&o->status_path, "status", true) < 0 ||
	    (o->err_log_path && fix_path(&o->err_log_path, "err-log", true) < 0) ||
	    (o->order_path && fix_path(&o->order_path, "order", true) < 0) ||
	    (o->stdin_path && fix_path(&o->stdin_path, "stdin", true) < 0) ||
	    fix_path(&o->cwd, "cwd", false) < 0 ||
	    (o->token_file && fix_path(&o->token_file, "token-file", false) < 0))
		return -1;
	o->argv = argv + optind;
	return 0;
}

int main(int argc, char **argv)
{
	struct init_opts opts = { 0 };
	int ret;

	log_init("cohort-init");
	ret = parse_args(argc, argv, &opts);
	if (ret > 0)
		exit(0);
	if (ret < 0) {
		fputs(USAGE, stderr);
		exit(2);
	}
	exit(launcher_run(&opts, argv));
}
