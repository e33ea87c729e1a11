#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define LOG_PREFIX "mounts: "
#include "log.h"
#include "mounts.h"

/* Bounds for the loops below, so a surprise cannot spin forever. */
#define MAX_UNMOUNT_ROUNDS 256
#define MAX_STACK_DEPTH 64

/* Directories that get a fresh mount inside every vhost. */
static const char *const replaced_dirs[] = { "/tmp", "/dev/shm", "/dev/pts", "/proc", "/sys" };

bool path_hidden_in_vhost(const char *path)
{
	size_t i, len;

	for (i = 0; i < sizeof(replaced_dirs) / sizeof(replaced_dirs[0]); i++) {
		len = strlen(replaced_dirs[i]);
		if (!strncmp(path, replaced_dirs[i], len) &&
		    (path[len] == '/' || path[len] == '\0'))
			return true;
	}
	return false;
}

/* Decode the octal escapes (\040 for a space...) of a mountinfo field in place. */
static void unescape_mountinfo(char *s)
{
	char *w = s;

	while (*s) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' &&
		    s[2] >= '0' && s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*w++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
			s += 4;
		} else {
			*w++ = *s++;
		}
	}
	*w = '\0';
}

/*
 * The mount point (5th field, unescaped) of a /proc/self/mountinfo line, which
 * this changes in place; NULL if the line is too short.
 */
static char *mount_point(char *line)
{
	char *save = NULL, *tok = line, *field = NULL;
	int k;

	for (k = 0; k < 5; k++) {
		field = strtok_r(tok, " ", &save);
		tok = NULL;
		if (!field)
			return NULL;
	}
	unescape_mountinfo(field);
	return field;
}

/*
 * Find a mount point that appears more than once in /proc/self/mountinfo.
 * Returns 1 and fills dup, 0 if there is none, -1 on error.
 */
static int find_stacked_mount(char *dup, size_t size)
{
	char **points = NULL;
	size_t n = 0, cap = 0, i;
	char *line = NULL;
	size_t line_size = 0;
	int ret = -1;
	FILE *f;

	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		pr_perror("open /proc/self/mountinfo");
		return -1;
	}
	while (getline(&line, &line_size, f) > 0) {
		char *mp = mount_point(line);

		if (!mp || !strcmp(mp, "/"))
			continue;	/* never touch the root */

		for (i = 0; i < n; i++) {
			if (!strcmp(points[i], mp)) {
				snprintf(dup, size, "%s", mp);
				ret = 1;
				goto out;
			}
		}
		if (n == cap) {
			char **p;

			cap = cap ? 2 * cap : 64;
			p = realloc(points, cap * sizeof(*points));
			if (!p) {
				pr_err("out of memory");
				goto out;
			}
			points = p;
		}
		points[n] = strdup(mp);
		if (!points[n]) {
			pr_err("out of memory");
			goto out;
		}
		n++;
	}
	if (ferror(f)) {
		pr_perror("read /proc/self/mountinfo");
		goto out;
	}
	ret = 0;
out:
	for (i = 0; i < n; i++)
		free(points[i]);
	free(points);
	free(line);
	fclose(f);
	return ret;
}

/*
 * Detach what find() finds (a mount point, written into its buffer) until it
 * finds nothing.  The mount table is read again after each unmount, since
 * detaching a mount also takes the mounts beneath it in the tree.
 */
static int unmount_found(int (*find)(char *, size_t), const char *what)
{
	char point[PATH_MAX];
	int round, found;

	for (round = 0; round < MAX_UNMOUNT_ROUNDS; round++) {
		found = find(point, sizeof(point));
		if (found <= 0)
			return found;
		if (umount2(point, MNT_DETACH) < 0) {
			pr_perror("unmount %s %s", what, point);
			return -1;
		}
	}
	pr_err("still finding a %s after %d unmounts", what, MAX_UNMOUNT_ROUNDS);
	return -1;
}

/*
 * Find a mount of a namespace handle (fstype nsfs: `ip netns add` bind-mounts one under
 * /run/netns for every named network namespace of the node).  Returns 1 and fills point,
 * 0 if there is none, -1 on error.
 */
static int find_nsfs_mount(char *point, size_t size)
{
	char *line = NULL;
	size_t line_size = 0;
	int ret = 0;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f) {
		pr_perror("open /proc/self/mountinfo");
		return -1;
	}
	while (ret == 0 && getline(&line, &line_size, f) > 0) {
		char *sep = strstr(line, " - ");
		char *mp;

		if (!sep || strncmp(sep + 3, "nsfs ", 5))
			continue;
		*sep = '\0';
		mp = mount_point(line);
		if (!mp)
			continue;
		snprintf(point, size, "%s", mp);
		ret = 1;
	}
	if (ret == 0 && ferror(f)) {
		pr_perror("read /proc/self/mountinfo");
		ret = -1;
	}
	free(line);
	fclose(f);
	return ret;
}

/* Detach every mount on dir, then mount a fresh file system there. */
static int replace_mount(const char *dir, const char *fstype,
			 unsigned long flags, const char *data)
{
	int depth;

	for (depth = 0; umount2(dir, MNT_DETACH) == 0; depth++) {
		if (depth == MAX_STACK_DEPTH) {
			pr_err("more than %d mounts stacked on %s", MAX_STACK_DEPTH, dir);
			return -1;
		}
	}
	if (errno != EINVAL && errno != ENOENT) {	/* EINVAL: not a mount point */
		pr_perror("unmount %s", dir);
		return -1;
	}
	if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
		pr_perror("create %s", dir);
		return -1;
	}
	if (mount(fstype, dir, fstype, flags, data) < 0) {
		pr_perror("mount %s on %s", fstype, dir);
		return -1;
	}
	return 0;
}

int mounts_setup(void)
{
	const unsigned long common = MS_NOSUID | MS_NODEV;

	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		pr_perror("make / recursively private");
		return -1;
	}
	/*
	 * These read /proc/self/mountinfo: they must run before /proc is replaced.
	 * Stacks of mounts on one mount point are cut down to one mount (on this
	 * machine kind two tmpfs are stacked on /dev/shm and two devpts on
	 * /dev/pts; CRIU cannot restore such stacks).  The node's namespace
	 * handles (`ip netns` mounts them under /run/netns) are the node's
	 * business, not the job's; a checkpoint would record them, and its restore
	 * would need every one again on whichever node it lands (one removed
	 * meanwhile, and the restore fails: "Can't stat mountpoint
	 * /run/netns/NAME").
	 */
	if (unmount_found(find_stacked_mount, "stacked mount") < 0 ||
	    unmount_found(find_nsfs_mount, "namespace handle") < 0)
		return -1;
	if (replace_mount("/sys", "sysfs", common | MS_NOEXEC | MS_RDONLY, NULL) < 0)
		return -1;
	if (replace_mount("/tmp", "tmpfs", common, "mode=1777") < 0)
		return -1;
	if (replace_mount("/dev/shm", "tmpfs", common, "mode=1777") < 0)
		return -1;
	if (replace_mount("/proc", "proc", common | MS_NOEXEC, NULL) < 0)
		return -1;
	/*
	 * Pseudo-terminals of the vhost's own (Open MPI gives its ranks some): with the node's
	 * devpts, a restore would need the same pty numbers free on whichever node it lands.
	 */
	if (replace_mount("/dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
			  "newinstance,ptmxmode=0666,mode=0620") < 0)
		return -1;
	if (mount("/dev/pts/ptmx", "/dev/ptmx", NULL, MS_BIND, NULL) < 0) {
		pr_perror("bind /dev/pts/ptmx on /dev/ptmx");
		return -1;
	}
	return 0;
}
