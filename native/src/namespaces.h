/* The namespaces of a vhost and their non-mount setup. */
#ifndef COHORT_NAMESPACES_H
#define COHORT_NAMESPACES_H

#include <sched.h>

/* Everything a vhost gets new; the user namespace stays the node's. */
#define VHOST_CLONE_FLAGS \
	(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS)

int set_hostname(const char *name);

/* Bring the loopback interface of the current net namespace up. */
int loopback_up(void);

#endif
