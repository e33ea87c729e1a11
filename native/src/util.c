#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define LOG_PREFIX ""
#include "log.h"
#include "util.h"

int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len > 0) {
		n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= n;
	}
	return 0;
}

ssize_t read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		n = read(fd, p + done, len - done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			break;
		done += n;
	}
	return done;
}

/* For kernels without close_range(2). */
static int close_fds_slow(int first)
{
	struct dirent *de;
	DIR *d;
	int fd;

	d = opendir("/proc/self/fd");
	if (!d) {
		pr_perror("open /proc/self/fd");
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] < '0' || de->d_name[0] > '9')
			continue;
		fd = atoi(de->d_name);
		if (fd >= first && fd != dirfd(d))
			close(fd);
	}
	closedir(d);
	return 0;
}

int close_fds_from(int first)
{
	if (close_range(first, ~0U, 0) == 0)
		return 0;
	if (errno != ENOSYS) {
		pr_perror("close_range");
		return -1;
	}
	return close_fds_slow(first);
}

int stdio_to_devnull(void)
{
	int fd, i, ret = -1;

	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("open /dev/null");
		return -1;
	}
	for (i = 0; i < 3; i++) {
		if (dup2(fd, i) < 0) {
			pr_perror("dup2 /dev/null onto fd %d", i);
			goto out;
		}
	}
	ret = 0;
out:
	if (fd > 2)
		close(fd);
	return ret;
}

int read_token_file(const char *path, char *token, size_t size)
{
	char buf[TOKEN_MAX + 64];
	size_t start = 0, end;
	ssize_t n;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("open token file %s", path);
		return -1;
	}
	n = read_full(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		pr_perror("read token file %s", path);
		goto out;
	}
	buf[n] = '\0';
	end = strcspn(buf, "\n");
	while (start < end && isspace((unsigned char)buf[start]))
		start++;
	while (end > start && isspace((unsigned char)buf[end - 1]))
		end--;
	if (end == start) {
		pr_err("token file %s: empty token", path);
		goto out;
	}
	if (end - start > TOKEN_MAX || end - start >= size) {
		pr_err("token file %s: token longer than %d bytes", path, TOKEN_MAX);
		goto out;
	}
	memcpy(token, buf + start, end - start);
	token[end - start] = '\0';
	ret = 0;
out:
	close(fd);
	return ret;
}

bool ct_equal(const char *a, size_t alen, const char *b, size_t blen)
{
	/* Walk all of b whatever a is, so the time leaks only blen. */
	unsigned char diff = alen != blen;
	size_t i;

	for (i = 0; i < blen; i++)
		diff |= (unsigned char)((i < alen ? a[i] : 0) ^ b[i]);
	return diff == 0;
}

static int fsync_parent_dir(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, ret;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (!slash)
		snprintf(dir, sizeof(dir), ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';

	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		pr_perror("open directory %s", dir);
		return -1;
	}
	ret = fsync(fd);
	if (ret < 0)
		pr_perror("fsync directory %s", dir);
	close(fd);
	return ret;
}

int write_file_atomic(const char *path, const char *data, size_t len)
{
	char tmp[PATH_MAX];
	int fd, ret = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp)) {
		pr_err("%s: path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		pr_perror("open %s", tmp);
		return -1;
	}
	if (write_full(fd, data, len) < 0) {
		pr_perror("write %s", tmp);
		goto out;
	}
	if (fsync(fd) < 0) {
		pr_perror("fsync %s", tmp);
		goto out;
	}
	if (close(fd) < 0) {
		fd = -1;
		pr_perror("close %s", tmp);
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		pr_perror("rename %s to %s", tmp, path);
		goto out;
	}
	ret = fsync_parent_dir(path);
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0)
		unlink(tmp);
	return ret;
}

char *absolute_path(const char *path)
{
	char cwd[PATH_MAX];
	char *abs;

	if (path[0] == '/')
		return strdup(path);
	if (!getcwd(cwd, sizeof(cwd))) {
		pr_perror("getcwd");
		return NULL;
	}
	if (asprintf(&abs, "%s/%s", cwd, path) < 0) {
		pr_err("out of memory");
		return NULL;
	}
	return abs;
}
