/* pid 1 of a vhost. */
#ifndef COHORT_INIT_H
#define COHORT_INIT_H

#include <stdbool.h>

#include "owner.h"
#include "util.h"

/* The command line of cohort-init, with every path made absolute. */
struct init_opts {
	const char *hostname;
	char *log_path;		/* the main process's stdout (and stderr without err_log_path) */
	char *err_log_path;	/* its stderr, kept apart by pid 1; NULL: in the log */
	char *order_path;	/* with err_log_path: the order of the chunks of both */
	char *stdin_path;	/* its stdin; NULL: /dev/null */
	char *status_path;
	char *cwd;		/* the main process's directory */
	int spawn_port;		/* 0: no spawn service */
	char *token_file;
	char token[TOKEN_MAX + 1];
	struct owner owner;	/* whom the job's processes run as (--uid, --gid, --groups) */
	char **argv;		/* CMD ARGS..., NULL-terminated */
	bool namespaces_ready;	/* the launcher's second stage (launcher.c) */
};

/*
 * What pid 1 tells the launcher over the report pipe: one byte (0 for
 * success, otherwise the launcher's exit code), then for a failure the
 * message.  pid 1 closes the pipe after writing.
 */
#define REPORT_OK 0
#define REPORT_FAILED 1
#define REPORT_NOT_FOUND 127
#define REPORT_MAX 1024

/*
 * Run as pid 1 of the new namespaces: set up the vhost, start the main
 * process, report to the launcher through report_fd, then reap and relay
 * signals until the main process exits.  Returns pid 1's exit code.
 */
int init_run(const struct init_opts *opts, int report_fd);

#endif
