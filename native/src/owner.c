#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define LOG_PREFIX "owner: "
#include "log.h"
#include "owner.h"

/* login(1)'s PATH for a user, when the job brings none. */
#define USER_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

int owner_parse_id(const char *s, unsigned int *id)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v >= UINT_MAX) {
		pr_err("bad uid or gid: '%s'", s);
		return -1;
	}
	*id = v;
	return 0;
}

int owner_parse_groups(const char *s, struct owner *o)
{
	char buf[16];
	const char *p = s;
	unsigned int id;
	size_t len;

	o->ngroups = 0;
	while (*p) {
		len = strcspn(p, ",");
		if (len == 0 || len >= sizeof(buf)) {
			pr_err("bad group list: '%s'", s);
			return -1;
		}
		if (o->ngroups == OWNER_GROUPS_MAX) {
			pr_err("more than %d supplementary groups", OWNER_GROUPS_MAX);
			return -1;
		}
		memcpy(buf, p, len);
		buf[len] = '\0';
		if (owner_parse_id(buf, &id) < 0)
			return -1;
		o->groups[o->ngroups++] = id;
		p += len;
		if (*p == ',' && !*++p) {
			pr_err("bad group list: '%s'", s);
			return -1;
		}
	}
	return 0;
}

/* The account's environment: what login(1) would give it. */
static enum owner_failure set_environment(const struct owner *o, int *err)
{
	struct passwd *pw;

	errno = 0;
	pw = getpwuid(o->uid);
	if (!pw) {
		*err = errno;
		return OWNER_NO_ACCOUNT;
	}
	if (setenv("HOME", pw->pw_dir, 1) < 0 || setenv("USER", pw->pw_name, 1) < 0 ||
	    setenv("LOGNAME", pw->pw_name, 1) < 0 ||
	    setenv("SHELL", pw->pw_shell[0] ? pw->pw_shell : "/bin/sh", 1) < 0 ||
	    setenv("PATH", USER_DEFAULT_PATH, 0) < 0) {
		*err = errno;
		return OWNER_ENV;
	}
	return OWNER_OK;
}

static bool has_group(const gid_t *list, int n, gid_t g)
{
	int i;

	for (i = 0; i < n; i++) {
		if (list[i] == g)
			return true;
	}
	return false;
}

/* The credentials are exactly the owner's, and a non-root owner cannot become root again. */
static bool dropped(const struct owner *o)
{
	static gid_t now[OWNER_GROUPS_MAX];
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	int n, i;

	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return false;
	if (ru != o->uid || eu != o->uid || su != o->uid ||
	    rg != o->gid || eg != o->gid || sg != o->gid)
		return false;
	n = getgroups(OWNER_GROUPS_MAX, now);
	if (n < 0)
		return false;
	for (i = 0; i < n; i++) {
		if (!has_group(o->groups, o->ngroups, now[i]))
			return false;
	}
	for (i = 0; i < o->ngroups; i++) {
		if (!has_group(now, n, o->groups[i]))
			return false;
	}
	return o->uid == 0 || setuid(0) < 0;
}

enum owner_failure owner_become(const struct owner *o, int *err)
{
	enum owner_failure f;

	*err = 0;
	if (!o->set)
		return OWNER_OK;
	/* Looked up as root, before the drop: the user database may be readable by root only. */
	if (o->uid != 0) {
		f = set_environment(o, err);
		if (f != OWNER_OK)
			return f;
	}
	/* Groups first, then the gid, then the uid: each step needs what the next one drops. */
	if (setgroups(o->ngroups, o->groups) < 0 || setresgid(o->gid, o->gid, o->gid) < 0 ||
	    setresuid(o->uid, o->uid, o->uid) < 0) {
		*err = errno;
		return OWNER_CREDS;
	}
	return dropped(o) ? OWNER_OK : OWNER_NOT_DROPPED;
}

void owner_describe(const struct owner *o, enum owner_failure f, int err, char *buf, size_t size)
{
	switch (f) {
	case OWNER_NO_ACCOUNT:
		snprintf(buf, size, "uid %u has no account on this node (getpwuid: %s): "
			 "the job's owner needs the same account on every node",
			 o->uid, err ? strerror(err) : "no such user");
		break;
	case OWNER_ENV:
		snprintf(buf, size, "set the environment of uid %u: %s", o->uid, strerror(err));
		break;
	case OWNER_CREDS:
		snprintf(buf, size, "become uid %u gid %u with %d groups: %s",
			 o->uid, o->gid, o->ngroups, strerror(err));
		break;
	case OWNER_NOT_DROPPED:
		snprintf(buf, size, "the credentials of uid %u gid %u did not take", o->uid, o->gid);
		break;
	default:
		snprintf(buf, size, "no failure");
	}
}
