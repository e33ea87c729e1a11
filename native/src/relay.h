/* Byte relay between cohort-rsh's stdio and a spawn connection. */
#ifndef COHORT_RELAY_H
#define COHORT_RELAY_H

/*
 * Copy stdin to sock (shutdown(SHUT_WR) at stdin's EOF) and sock to
 * stdout, until sock reaches EOF.  Returns 0 at EOF, -1 on a socket
 * error.  A broken stdout does not stop the relay: the remote command
 * keeps running and its output is discarded, as the caller (mpirun)
 * watches this process to know the remote side is alive.
 */
int relay(int sock);

#endif
