/* Small fd and file helpers shared by cohort-init and cohort-rsh. */
#ifndef COHORT_UTIL_H
#define COHORT_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Longest token accepted (spawn protocol and token files). */
#define TOKEN_MAX 256

/* write() all of buf, retrying on EINTR and short writes: 0 or -1. */
int write_full(int fd, const void *buf, size_t len);
/* read() until len bytes or EOF, retrying on EINTR: bytes read or -1. */
ssize_t read_full(int fd, void *buf, size_t len);

/* Close every fd >= first: 0 or -1. */
int close_fds_from(int first);

/* Point fd 0, 1 and 2 at /dev/null: 0 or -1. */
int stdio_to_devnull(void);

/*
 * Read a token: the first line of the file, with surrounding blanks
 * trimmed.  Fails on an empty token or one longer than TOKEN_MAX.
 */
int read_token_file(const char *path, char *token, size_t size);

/* Compare two byte strings in time that depends only on their lengths. */
bool ct_equal(const char *a, size_t alen, const char *b, size_t blen);

/* Write PATH.tmp, fsync it, rename it to PATH and fsync the directory. */
int write_file_atomic(const char *path, const char *data, size_t len);

/* Return a malloc()ed absolute version of path (relative to the cwd), or NULL. */
char *absolute_path(const char *path);

#endif
