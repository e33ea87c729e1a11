/*
 * Logging for the native programs, modelled on CRIU's criu/include/log.h.
 *
 * Every line is "<program>: <file prefix><message>\n".  A file sets its own
 * prefix by defining LOG_PREFIX before including this header.  pr_perror()
 * appends the text of errno.  Messages are given without a trailing newline.
 *
 * Where the lines go is chosen at run time:
 *  - log_set_fd(fd): write to an fd (the launcher and cohort-rsh use stderr);
 *    fd -1 discards the output;
 *  - log_set_path(path): append to a file, opening and closing it for every
 *    line, so the caller keeps no fd to a host file open (pid 1 of a vhost
 *    must not, or CRIU cannot dump it);
 *  - log_set_writer(fn): hand every line to fn (pid 1 records its lines in
 *    the job's stderr log through output.h, in order with the job's own).
 * Whatever the sink, the text of the last error is kept (without the program
 * and file prefixes) so that pid 1 can hand it to the launcher.
 */
#ifndef COHORT_LOG_H
#define COHORT_LOG_H

#include <errno.h>
#include <stddef.h>
#include <string.h>

#ifndef LOG_PREFIX
#define LOG_PREFIX ""
#endif

enum log_level {
	LOG_ERROR,
	LOG_WARN,
	LOG_INFO,
};

void log_init(const char *program);
void log_set_fd(int fd);
void log_set_path(const char *path);
void log_set_writer(void (*writer)(const char *buf, size_t len));
const char *log_last_error(void);

void log_print(enum log_level level, const char *prefix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define pr_err(fmt, ...)  log_print(LOG_ERROR, LOG_PREFIX, fmt, ##__VA_ARGS__)
#define pr_warn(fmt, ...) log_print(LOG_WARN, LOG_PREFIX, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...) log_print(LOG_INFO, LOG_PREFIX, fmt, ##__VA_ARGS__)
#define pr_perror(fmt, ...) \
	pr_err(fmt ": %s", ##__VA_ARGS__, strerror(errno))

#endif
