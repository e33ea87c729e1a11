#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_PREFIX ""
#include "launcher.h"
#include "log.h"
#include "namespaces.h"

static void describe_status(int status, char *buf, size_t size)
{
	if (WIFSIGNALED(status))
		snprintf(buf, size, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, size, "exit code %d", WEXITSTATUS(status));
}

static int wait_child(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR) {
			pr_perror("wait for pid 1 of the vhost (%d)", pid);
			return -1;
		}
	}
	return 0;
}

/* Read pid 1's report and turn it into the launcher's output and exit code. */
static int await_report(pid_t pid, int fd)
{
	char msg[REPORT_MAX + 1], how[64];
	int status, code;
	ssize_t n;

	n = read_full(fd, msg, REPORT_MAX);
	if (n < 0) {
		pr_perror("read the report of pid 1");
		kill(pid, SIGKILL);
		wait_child(pid, &status);
		return REPORT_FAILED;
	}
	if (n > 0 && msg[0] == REPORT_OK) {
		if (printf("%d\n", pid) < 0 || fflush(stdout) == EOF) {
			pr_perror("print the pid of the vhost");
			kill(pid, SIGKILL);
			wait_child(pid, &status);
			return REPORT_FAILED;
		}
		return 0;	/* pid 1 now runs on its own */
	}

	/* A failed pid 1 exits right after its report. */
	if (wait_child(pid, &status) < 0)
		return REPORT_FAILED;
	if (n == 0) {
		describe_status(status, how, sizeof(how));
		pr_err("pid 1 of the vhost died during setup (%s)", how);
		return REPORT_FAILED;
	}
	msg[n] = '\0';
	code = (unsigned char)msg[0];
	pr_err("%s", msg + 1);
	return code == REPORT_NOT_FOUND ? REPORT_NOT_FOUND : REPORT_FAILED;
}

/*
 * Execute this program again, by path, now that it is in the vhost's mount
 * namespace.  The mappings of a process (its binary, ld.so, libc) keep
 * the mount they were opened on; a pid 1 forked from the first image
 * would carry mappings of the node's mount namespace, and CRIU cannot
 * dump those ("Can't lookup mount=N for fd=-3").  After this exec they
 * belong to the vhost's own copy of the mounts, and pid 1 inherits them.
 * Exec'ing /proc/self/exe would not do: the magic link leads back to the
 * file on the node's mount.  Returns only on failure.
 */
static int reexec_in_vhost(char **argv)
{
	char exe[PATH_MAX];
	char **args;
	ssize_t n;
	int argc;

	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0) {
		pr_perror("readlink /proc/self/exe");
		return -1;
	}
	exe[n] = '\0';
	for (argc = 0; argv[argc]; argc++)
		;
	args = calloc(argc + 2, sizeof(*args));
	if (!args) {
		pr_err("out of memory");
		return -1;
	}
	args[0] = argv[0];
	args[1] = (char *)"--" NAMESPACES_READY_OPT;
	memcpy(args + 2, argv + 1, argc * sizeof(*args));	/* with the NULL */
	execv(exe, args);
	pr_perror("exec %s", exe);
	free(args);
	return -1;
}

/*
 * The second stage runs only after the unshare: then the pid namespace
 * for children differs from our own.  This keeps a stray
 * --namespaces-ready from running the mount setup on the node.
 */
static int check_unshared(void)
{
	char own[64], children[64];
	ssize_t a, b;

	a = readlink("/proc/self/ns/pid", own, sizeof(own) - 1);
	if (a < 0) {
		pr_perror("readlink /proc/self/ns/pid");
		return -1;
	}
	b = readlink("/proc/self/ns/pid_for_children", children, sizeof(children) - 1);
	if (b < 0 && errno == ENOENT)
		return 0;	/* a new pid namespace with no process in it yet */
	if (b < 0) {
		pr_perror("readlink /proc/self/ns/pid_for_children");
		return -1;
	}
	if (a == b && !memcmp(own, children, a)) {
		pr_err("--%s is internal to cohort-init", NAMESPACES_READY_OPT);
		return -1;
	}
	return 0;
}

int launcher_run(struct init_opts *o, char **argv)
{
	int report[2];
	pid_t pid;
	int ret;

	if (!o->namespaces_ready) {
		/* An inherited fd to a node mount would make every dump of the vhost fail. */
		if (close_fds_from(3) < 0)
			return REPORT_FAILED;
		if (unshare(VHOST_CLONE_FLAGS) < 0) {
			pr_perror("unshare the vhost namespaces");
			return REPORT_FAILED;
		}
		reexec_in_vhost(argv);
		return REPORT_FAILED;
	}
	if (check_unshared() < 0)
		return REPORT_FAILED;
	/* Read now: the file may sit where the vhost will not see it (/tmp). */
	if (o->spawn_port && read_token_file(o->token_file, o->token, sizeof(o->token)) < 0)
		return REPORT_FAILED;
	if (pipe2(report, O_CLOEXEC) < 0) {
		pr_perror("create the report pipe");
		return REPORT_FAILED;
	}
	pid = fork();
	if (pid < 0) {
		pr_perror("fork pid 1 of the vhost");
		close(report[0]);
		close(report[1]);
		return REPORT_FAILED;
	}
	if (pid == 0) {
		close(report[0]);
		return init_run(o, report[1]);
	}
	close(report[1]);
	ret = await_report(pid, report[0]);
	close(report[0]);
	return ret;
}
