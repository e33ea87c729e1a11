/*
 * The job's owner: the user whose credentials the job's processes run
 * with.  pid 1 of a vhost stays root (it writes the status file and the
 * logs in the agent's directories, and reaps); every process it starts --
 * the main process and each command of the spawn service -- becomes the
 * owner in the child, after everything that needs root is done and before
 * anything of the job's runs.
 */
#ifndef COHORT_OWNER_H
#define COHORT_OWNER_H

#include <stdbool.h>
#include <sys/types.h>

/* Most supplementary groups a job's owner may have (the kernel allows 65536). */
#define OWNER_GROUPS_MAX 1024

struct owner {
	bool set;		/* false: keep the launcher's credentials (as root ran it) */
	uid_t uid;
	gid_t gid;
	int ngroups;
	gid_t groups[OWNER_GROUPS_MAX];
};

/* Parse a uid or gid (decimal, below 2^32 - 1, which means "none"): 0 or -1. */
int owner_parse_id(const char *s, unsigned int *id);

/* Parse "G1,G2,..." (empty: no supplementary groups) into o->groups: 0 or -1. */
int owner_parse_groups(const char *s, struct owner *o);

/* What failed in owner_become(), for the message of the process that waits for the child. */
enum owner_failure {
	OWNER_OK,
	OWNER_NO_ACCOUNT,	/* no entry in the user database */
	OWNER_ENV,		/* setenv failed (errno) */
	OWNER_CREDS,		/* a set*id call failed (errno) */
	OWNER_NOT_DROPPED,	/* the calls returned 0 but the credentials differ */
};

/*
 * In a child about to run something of the job: for a non-root owner, set
 * HOME, USER, LOGNAME and SHELL from the user database (and PATH when the
 * job has none), then set the supplementary groups, the gid and the uid, in
 * that order, and check that they took (and, for a non-root owner, that
 * root cannot be regained).  Does nothing when the owner is not set.
 * Returns OWNER_OK or what failed, with errno saved in *err.
 */
enum owner_failure owner_become(const struct owner *o, int *err);

/* One line saying why owner_become() failed (for pr_err and the spawn reply). */
void owner_describe(const struct owner *o, enum owner_failure f, int err, char *buf, size_t size);

#endif
