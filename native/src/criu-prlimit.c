/*
 * libcohort-prlimit.so: preloaded into CRIU (LD_PRELOAD) so that it can
 * read the resource limits of a job that does not run as root on a
 * machine whose root lacks CAP_SYS_RESOURCE (containers often drop it
 * from the bounding set).
 *
 * CRIU reads each task's limits with prlimit(pid, res, NULL, &old), through
 * glibc or syscall(__NR_prlimit64, ...) (both are wrapped here).  The
 * kernel lets a process read another's limits only if their uids and gids
 * all match or it holds CAP_SYS_RESOURCE, so without that capability the
 * dump of a job running as its owner fails ("Can't get rlimit 0").  The
 * same limits are in /proc/PID/limits, which anyone may read.  Only a
 * read of another process's limits refused with EPERM is answered from
 * there; every other call is the real one.  Nothing else changes: the
 * restore sets the limits inside the restored task itself, which needs no
 * capability while they do not exceed what it inherited.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>

typedef int (*prlimit_fn)(pid_t, enum __rlimit_resource, const struct rlimit64 *, struct rlimit64 *);

static int parse_limit(const char *s, rlim64_t *v)
{
	char *end;

	if (!strncmp(s, "unlimited", 9)) {
		*v = RLIM64_INFINITY;
		return 0;
	}
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s ? -1 : 0;
}

/*
 * /proc/PID/limits: a header, then one line per resource in the order of
 * their numbers, "NAME  SOFT  HARD  [UNITS]" with the name in a 26-column
 * field and the limits in 21-column fields.
 */
static int limits_from_proc(pid_t pid, int res, struct rlimit64 *old)
{
	char path[64], line[256];
	FILE *f;
	int n = -1, ret = -1;

	snprintf(path, sizeof(path), "/proc/%d/limits", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		if (n++ != res)
			continue;
		if (strlen(line) > 47 && !parse_limit(line + 26, &old->rlim_cur) &&
		    !parse_limit(line + 47, &old->rlim_max))
			ret = 0;
		break;
	}
	fclose(f);
	return ret;
}

/* After the real call: answer a refused read of another process's limits from /proc. */
static int fall_back(int ret, pid_t pid, int res, const void *new_limit, struct rlimit64 *old)
{
	int saved = errno;

	if (ret == 0 || saved != EPERM || new_limit || !old || pid == 0)
		return ret;
	if (limits_from_proc(pid, res, old) == 0)
		return 0;
	errno = saved;
	return -1;
}

static void *real_symbol(const char *name)
{
	void *f = dlsym(RTLD_NEXT, name);

	if (!f)
		errno = ENOSYS;
	return f;
}

int prlimit64(pid_t pid, enum __rlimit_resource res, const struct rlimit64 *new_limit,
	      struct rlimit64 *old)
{
	static prlimit_fn real;

	if (!real && !(real = (prlimit_fn)real_symbol("prlimit64")))
		return -1;
	return fall_back(real(pid, res, new_limit, old), pid, res, new_limit, old);
}

/* The same function under its other name (struct rlimit is struct rlimit64 on 64-bit). */
int prlimit(pid_t pid, enum __rlimit_resource res, const struct rlimit *new_limit,
	    struct rlimit *old)
{
	return prlimit64(pid, res, (const struct rlimit64 *)new_limit, (struct rlimit64 *)old);
}

typedef long (*syscall_fn)(long, ...);

long syscall(long nr, ...)
{
	static syscall_fn real;
	long a[6], ret;
	va_list ap;
	int i;

	/* Six arguments, as glibc's own syscall() takes from the registers whatever the call. */
	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!real && !(real = (syscall_fn)real_symbol("syscall")))
		return -1;
	ret = real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (nr != SYS_prlimit64)
		return ret;
	return fall_back((int)ret, (pid_t)a[0], (int)a[1], (const void *)a[2],
			 (struct rlimit64 *)a[3]);
}
