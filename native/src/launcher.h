/* The launcher: the process the node agent starts. */
#ifndef COHORT_LAUNCHER_H
#define COHORT_LAUNCHER_H

#include "init.h"

/*
 * Internal option: the launcher runs it on itself after the unshare (see
 * launcher.c); it is not for callers.
 */
#define NAMESPACES_READY_OPT "namespaces-ready"

/*
 * Unshare the vhost's namespaces, execute this program again inside them
 * (with argv plus --namespaces-ready), and there fork the vhost's pid 1.  In the launcher,
 * prints pid 1's host pid once the vhost is running and returns the
 * launcher's exit code (0, 1, or 127 when the command cannot be run).
 * In the forked pid 1, returns pid 1's exit code.  Either way the
 * caller's only job is to exit with it.
 */
int launcher_run(struct init_opts *opts, char **argv);

#endif
