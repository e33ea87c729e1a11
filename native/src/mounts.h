/* Mount namespace setup of a vhost (runs in pid 1, inside its own mount ns). */
#ifndef COHORT_MOUNTS_H
#define COHORT_MOUNTS_H

#include <stdbool.h>

/*
 * Make every mount private, remove stacked duplicate mounts, and give the
 * vhost a fresh read-only /sys, fresh tmpfs on /tmp and /dev/shm, a
 * /proc of its own pid namespace and a devpts instance of its own (so its
 * pty numbers never clash with the node's on restore).  Never affects the
 * node's mounts.
 */
int mounts_setup(void);

/*
 * True if path lies under a directory that the vhost replaces (/tmp,
 * /dev/shm, /dev/pts, /proc, /sys): such a path would name another file inside
 * the vhost than on the node.
 */
bool path_hidden_in_vhost(const char *path);

#endif
