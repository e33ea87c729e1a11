#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOG_PREFIX ""
#include "init.h"
#include "log.h"
#include "mounts.h"
#include "namespaces.h"
#include "output.h"
#include "spawn.h"

/*
 * Everything pid 1 holds while it runs.  It is deliberately small: CRIU
 * dumps pid 1 with the rest of the vhost, so its fds are only the
 * signalfd, the listening socket, the job's output pipes and /dev/null on
 * 0-2 (opened inside the vhost's mount namespace); no timers, no fd to a
 * host file.
 */
struct init_state {
	sigset_t child_mask;	/* the mask children are exec'ed with */
	int sfd;		/* signalfd: SIGCHLD and the signals forwarded */
	int listen_fd;		/* spawn service, or -1 */
	struct output out;	/* the job's output, when pid 1 keeps it */
	pid_t main_pid;
	int main_status;
	bool main_done;
};

/* How a failed child tells pid 1 which step failed, over a CLOEXEC pipe. */
enum exec_step {
	STEP_SETUP,
	STEP_OWNER,
	STEP_CHDIR,
	STEP_EXEC,
};

struct exec_failure {
	int step;
	int err;
	int owner;	/* enum owner_failure, at STEP_OWNER */
};

/*
 * Signals that pid 1 handles through its signalfd: SIGCHLD, and those it
 * forwards to the main process's group (the ones `cohort kill --signal`
 * accepts; mpirun passes SIGUSR1 and SIGUSR2 on to its ranks).
 */
static void handled_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGCHLD);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGALRM);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
}

/* pid 1's diagnostics, in the job's stderr log and in order with its output. */
static const struct output *diag_output;

static void diag_write(const char *buf, size_t len)
{
	output_write(diag_output, OUTPUT_STDERR, buf, len);
}

static int vhost_setup(const struct init_opts *o)
{
	if (setsid() < 0) {
		pr_perror("setsid");
		return -1;
	}
	if (mounts_setup() < 0)
		return -1;
	if (set_hostname(o->hostname) < 0)
		return -1;
	if (loopback_up() < 0)
		return -1;
	/* The launcher's directory may be a host path hidden by now. */
	if (chdir("/") < 0) {
		pr_perror("chdir /");
		return -1;
	}
	/* Opened after the mount setup, so they refer to the vhost's /dev. */
	return stdio_to_devnull();
}

/*
 * Start from a clean slate whatever the node agent left: every signal
 * handled by default and nothing blocked, in pid 1 and in what it execs.
 * Then block the signals pid 1 reads from its signalfd.
 */
static int signals_setup(struct init_state *st)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t handled;
	int sig;

	for (sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			sigaction(sig, &sa, NULL);	/* fails harmlessly for RT signals glibc keeps */
	}
	sigemptyset(&st->child_mask);
	if (sigprocmask(SIG_SETMASK, &st->child_mask, NULL) < 0) {
		pr_perror("clear the signal mask");
		return -1;
	}
	handled_signals(&handled);
	if (sigprocmask(SIG_BLOCK, &handled, NULL) < 0) {
		pr_perror("block signals");
		return -1;
	}
	st->sfd = signalfd(-1, &handled, SFD_NONBLOCK | SFD_CLOEXEC);
	if (st->sfd < 0) {
		pr_perror("create the signalfd");
		return -1;
	}
	return 0;
}

/*
 * The main process's standard descriptors: stdin (-1: keep /dev/null, like
 * pid 1's), stdout and stderr.
 */
struct main_fds {
	int in, out, err;
};

/* In the forked main process: set up and exec the command, or report why not. */
static void __attribute__((noreturn))
exec_main(const struct init_opts *o, const struct init_state *st, const struct main_fds *fds,
	  int err_fd)
{
	struct exec_failure f = { .step = STEP_SETUP };

	if (setpgid(0, 0) < 0)
		goto fail;
	if (sigprocmask(SIG_SETMASK, &st->child_mask, NULL) < 0)
		goto fail;
	/* dup2 clears CLOEXEC on the copies; the originals go at exec. */
	if (fds->in >= 0 && dup2(fds->in, 0) < 0)
		goto fail;
	if (dup2(fds->out, 1) < 0 || dup2(fds->err, 2) < 0)
		goto fail;
	close(st->sfd);
	if (st->listen_fd >= 0)
		close(st->listen_fd);

	/* Everything that needs root is done; the job runs as its owner from here on. */
	f.step = STEP_OWNER;
	f.owner = owner_become(&o->owner, &f.err);
	if (f.owner != OWNER_OK)
		goto report;
	f.step = STEP_CHDIR;
	if (chdir(o->cwd) < 0)
		goto fail;
	f.step = STEP_EXEC;
	execvp(o->argv[0], o->argv);
fail:
	f.err = errno;
report:
	/* Nobody waits for this exit code: pid 1 reads the pipe. */
	if (write(err_fd, &f, sizeof(f)) < 0)
		_exit(REPORT_FAILED);
	_exit(REPORT_FAILED);
}

/* Turn the failure of the main process's exec into a message and exit code. */
static int exec_failure_code(const struct init_opts *o, const struct exec_failure *f)
{
	const char *cmd = o->argv[0];
	char why[256];

	switch (f->step) {
	case STEP_OWNER:
		owner_describe(&o->owner, f->owner, f->err, why, sizeof(why));
		pr_err("%s", why);
		return REPORT_FAILED;
	case STEP_CHDIR:
		pr_err("chdir %s: %s", o->cwd, strerror(f->err));
		return REPORT_FAILED;
	case STEP_EXEC:
		if (f->err == ENOENT || f->err == ENOTDIR) {
			pr_err("%s: command not found", cmd);
			return REPORT_NOT_FOUND;
		}
		pr_err("%s: %s", cmd, strerror(f->err));
		if (f->err == EACCES || f->err == ENOEXEC || f->err == EPERM || f->err == EISDIR)
			return REPORT_NOT_FOUND;
		return REPORT_FAILED;
	default:
		pr_err("set up the main process: %s", strerror(f->err));
		return REPORT_FAILED;
	}
}

/*
 * Fork and exec the job's main process.  Returns REPORT_OK, or the
 * launcher's exit code after logging why (the child is reaped then).
 */
static int start_main(const struct init_opts *o, struct init_state *st)
{
	struct main_fds fds = { -1, -1, -1 };
	struct exec_failure f;
	int err_pipe[2] = { -1, -1 };
	int child_out[2] = { -1, -1 };
	int log_fd = -1, ret = REPORT_FAILED;
	ssize_t n;
	pid_t pid;

	/* Opened only now: an fd opened before the unshare would refer to the node's mounts. */
	if (o->stdin_path) {
		fds.in = open(o->stdin_path, O_RDONLY | O_CLOEXEC);
		if (fds.in < 0) {
			pr_perror("open stdin %s", o->stdin_path);
			return REPORT_FAILED;
		}
	}
	if (st->out.on) {
		if (output_open(&st->out, child_out) < 0)
			goto out;
		fds.out = child_out[0];
		fds.err = child_out[1];
	} else {
		log_fd = open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (log_fd < 0) {
			pr_perror("open log %s", o->log_path);
			goto out;
		}
		fds.out = fds.err = log_fd;
	}
	if (pipe2(err_pipe, O_CLOEXEC) < 0) {
		pr_perror("create the exec pipe");
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		pr_perror("fork the main process");
		goto out;
	}
	if (pid == 0) {
		close(err_pipe[0]);
		exec_main(o, st, &fds, err_pipe[1]);
	}
	close(err_pipe[1]);
	err_pipe[1] = -1;

	n = read_full(err_pipe[0], &f, sizeof(f));
	if (n == 0) {		/* the pipe closed on exec */
		st->main_pid = pid;
		ret = REPORT_OK;
		goto out;
	}
	if (n == sizeof(f)) {
		ret = exec_failure_code(o, &f);
	} else {
		pr_perror("read the exec pipe");
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
out:
	if (err_pipe[0] >= 0)
		close(err_pipe[0]);
	if (err_pipe[1] >= 0)
		close(err_pipe[1]);
	/* pid 1 keeps no fd to a host file, nor the write ends of the output pipes. */
	if (log_fd >= 0)
		close(log_fd);
	if (fds.in >= 0)
		close(fds.in);
	if (child_out[0] >= 0)
		close(child_out[0]);
	if (child_out[1] >= 0)
		close(child_out[1]);
	return ret;
}

static void report(int fd, int code, const char *msg)
{
	char buf[REPORT_MAX];
	int len;

	buf[0] = (char)code;
	len = 1;
	if (code != REPORT_OK)
		len += snprintf(buf + 1, sizeof(buf) - 1, "%s", msg[0] ? msg : "setup failed");
	if (len > (int)sizeof(buf) - 1)
		len = sizeof(buf) - 1;
	/* Nothing to do if the launcher is gone: it would have nobody to tell. */
	if (write_full(fd, buf, len) < 0)
		pr_perror("write the report");
	close(fd);
}

/* Reap every child that has exited; note the main process's status. */
static void reap_children(struct init_state *st)
{
	int status;
	pid_t pid;

	for (;;) {
		pid = waitpid(-1, &status, WNOHANG);
		if (pid < 0 && errno == EINTR)
			continue;
		if (pid <= 0)
			return;
		if (pid == st->main_pid && !st->main_done) {
			st->main_status = status;
			st->main_done = true;
		}
	}
}

static void forward_signal(const struct init_state *st, int sig)
{
	if (st->main_done)
		return;
	if (kill(-st->main_pid, sig) == 0)
		return;
	/* The main process may have left its process group. */
	if (kill(st->main_pid, sig) < 0 && errno != ESRCH)
		pr_perror("forward signal %d to %d", sig, st->main_pid);
}

static int handle_signals(struct init_state *st)
{
	struct signalfd_siginfo si;
	ssize_t n;

	for (;;) {
		n = read(st->sfd, &si, sizeof(si));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n != sizeof(si)) {
			pr_perror("read the signalfd");
			return -1;
		}
		if (si.ssi_signo != SIGCHLD)
			forward_signal(st, si.ssi_signo);
	}
	/* Reap even without a SIGCHLD: signals coalesce. */
	reap_children(st);
	return 0;
}

static int write_status(const char *path, int status, int *code)
{
	char buf[64];
	int len;

	if (WIFSIGNALED(status)) {
		*code = 128 + WTERMSIG(status);
		len = snprintf(buf, sizeof(buf), "signaled %d\n", WTERMSIG(status));
	} else {
		*code = WEXITSTATUS(status);
		len = snprintf(buf, sizeof(buf), "exited %d\n", WEXITSTATUS(status));
	}
	return write_file_atomic(path, buf, len);
}

/*
 * Reap, relay signals, keep the job's output and serve spawn requests
 * until the main process exits.
 */
static int event_loop(const struct init_opts *o, struct init_state *st)
{
	/* Closed in spawned children (all CLOEXEC too, but not until their exec). */
	const int close_fds[] = { st->sfd, st->listen_fd, st->out.pipe[0], st->out.pipe[1] };
	const struct spawn_ctx ctx = {
		.token = o->token,
		.owner = &o->owner,
		.cwd = o->cwd,
		.child_sigmask = &st->child_mask,
		.close_fds = close_fds,
		.nr_close_fds = 4,
	};
	/* A negative fd is ignored by poll: no listener, no output pipes, a pipe at EOF. */
	struct pollfd pfd[4] = {
		{ .fd = st->sfd, .events = POLLIN },
		{ .fd = st->listen_fd, .events = POLLIN },
		{ .fd = st->out.pipe[OUTPUT_STDOUT], .events = POLLIN },
		{ .fd = st->out.pipe[OUTPUT_STDERR], .events = POLLIN },
	};
	int code, s;

	if (handle_signals(st) < 0)
		return REPORT_FAILED;
	while (!st->main_done) {
		/* No timeout: nothing here is tied to the node's clock. */
		if (poll(pfd, 4, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_perror("poll");
			return REPORT_FAILED;
		}
		for (s = OUTPUT_STDOUT; s <= OUTPUT_STDERR; s++) {
			if (pfd[2 + s].revents) {
				output_copy(&st->out, s);
				pfd[2 + s].fd = st->out.pipe[s];
			}
		}
		if (pfd[0].revents && handle_signals(st) < 0)
			return REPORT_FAILED;
		if (pfd[1].revents && !st->main_done)
			spawn_accept(st->listen_fd, &ctx);	/* a failure costs one request only */
	}
	/* What the main process wrote last is still in the pipes. */
	if (st->out.on)
		output_drain(&st->out);
	if (write_status(o->status_path, st->main_status, &code) < 0)
		pr_err("could not write the status file; main process ended with exit code %d", code);
	return code;
}

int init_run(const struct init_opts *o, int report_fd)
{
	struct init_state st = {
		.sfd = -1,
		.listen_fd = -1,
		.out = {
			.on = o->err_log_path != NULL,
			.pipe = { -1, -1 },
			.log = { o->log_path, o->err_log_path },
			.order = o->order_path,
		},
	};
	int code = REPORT_FAILED;

	/* Until the report, errors go to the launcher, not to a log. */
	log_set_fd(-1);
	if (vhost_setup(o) < 0)
		goto fail;
	if (o->spawn_port) {
		st.listen_fd = spawn_listen(o->spawn_port);
		if (st.listen_fd < 0)
			goto fail;
	}
	if (signals_setup(&st) < 0)
		goto fail;
	code = start_main(o, &st);
	if (code != REPORT_OK)
		goto fail;

	if (st.out.on) {
		diag_output = &st.out;
		log_set_writer(diag_write);
	} else {
		log_set_path(o->log_path);
	}
	report(report_fd, REPORT_OK, "");
	return event_loop(o, &st);
fail:
	report(report_fd, code, log_last_error());
	return code;
}
