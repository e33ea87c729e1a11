/*
 * The spawn protocol between cohort-rsh (client) and the spawn service of
 * cohort-init (server), version 1.  Text header, then a raw byte stream:
 *
 *   client: "COHORT-SPAWN 1\n"
 *           "token <TOKEN>\n"        TOKEN: 1..256 bytes, no blanks
 *           "cmd <LEN>\n"            LEN: decimal, 1..65536
 *           <LEN bytes: the shell command>
 *   server: "ok\n"                   then the stream is the command's stdio
 *       or: "error: <reason>\n"      then the server closes
 *
 * The client sends nothing after the header until it has read the reply,
 * so a refused request never has unread data that would turn the
 * server's close into a reset and lose the reason.
 */
#ifndef COHORT_SPAWN_PROTO_H
#define COHORT_SPAWN_PROTO_H

#include <stddef.h>

#include "util.h"

#define SPAWN_MAGIC "COHORT-SPAWN 1"
#define SPAWN_OK "ok"
#define SPAWN_ERROR "error: "
#define SPAWN_CMD_MAX (64 * 1024)
#define SPAWN_DEFAULT_PORT 7207
/* Longest header or reply line, without its newline. */
#define SPAWN_LINE_MAX (TOKEN_MAX + 64)

struct spawn_request {
	char token[TOKEN_MAX + 1];
	char *cmd;		/* malloc()ed, NUL-terminated */
	size_t cmd_len;
};

/*
 * Read one line, one byte at a time so that nothing past the newline is
 * consumed.  timeout_ms bounds the wait for each byte (-1: no bound).
 * Returns the length without the newline, or -1 with *reason set.
 */
int spawn_read_line(int fd, char *buf, size_t size, int timeout_ms,
		    const char **reason);

/* Server side: read and check the shape of a request (not the token). */
int spawn_read_request(int fd, struct spawn_request *req, int timeout_ms,
		       const char **reason);

/* Client side: send the header and the command. */
int spawn_send_request(int fd, const char *token, const char *cmd, size_t len);

#endif
