#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"

#define LOG_LINE_MAX 1024

/*
 * The sink is process-wide state, like CRIU's log: it is set once per
 * process (launcher, pid 1, forked children) and read by every pr_*().
 */
static const char *log_program = "cohort";
static int log_fd = 2;
static const char *log_path;
static void (*log_writer)(const char *buf, size_t len);
static char last_error[LOG_LINE_MAX];

void log_init(const char *program)
{
	log_program = program;
}

void log_set_fd(int fd)
{
	log_fd = fd;
	log_path = NULL;
}

void log_set_path(const char *path)
{
	log_fd = -1;
	log_path = path;
}

void log_set_writer(void (*writer)(const char *buf, size_t len))
{
	log_fd = -1;
	log_path = NULL;
	log_writer = writer;
}

const char *log_last_error(void)
{
	return last_error;
}

static void log_write(const char *buf, size_t len)
{
	int fd = log_fd;
	ssize_t n;

	if (log_writer) {
		log_writer(buf, len);
		return;
	}
	if (log_path) {
		fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
		if (fd < 0)
			return;
	}
	if (fd >= 0) {
		/* One write() per line keeps lines whole in an O_APPEND file. */
		n = write(fd, buf, len);
		(void)n;
	}
	if (log_path)
		close(fd);
}

void log_print(enum log_level level, const char *prefix, const char *fmt, ...)
{
	char line[LOG_LINE_MAX + 128];
	char msg[LOG_LINE_MAX];
	int saved_errno = errno;
	const char *tag = "";
	va_list ap;
	int len;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (level == LOG_ERROR)
		snprintf(last_error, sizeof(last_error), "%s", msg);
	else if (level == LOG_WARN)
		tag = "warning: ";

	len = snprintf(line, sizeof(line), "%s: %s%s%s\n", log_program, prefix, tag, msg);
	if (len >= (int)sizeof(line)) {
		len = sizeof(line) - 1;
		line[len - 1] = '\n';
	}
	log_write(line, len);
	errno = saved_errno;
}
