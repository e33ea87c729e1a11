#!/bin/bash
# CRIU action script installed by the Cohort node agent. It talks to the agent through two
# FIFOs in $COHORT_HOOK_DIR: "event" (to the agent) and "decision" (from the agent).
#
# network-lock runs once CRIU has frozen the tasks and before it locks the vhost's network.
# The agent cuts the job's overlay channels (no packet reaches the vhost any more, markers go
# to the other nodes) and answers "go"; anything else -> exit 1 (CRIU fails the dump and the
# tasks carry on).
#
# post-dump runs after the images are written and before CRIU resumes or kills the frozen
# tasks. It tells the agent the dump is done (with the size of the job's output log at that
# instant) and holds the tasks frozen until the coordinator has decided: "commit" -> exit 0
# (CRIU resumes them, or kills them for --stop); anything else -> exit 1 (CRIU abandons the
# dump and the tasks carry on).
#
# pre-resume (restore, COHORT_RESTORE=1) runs once the tree is restored and its network
# unlocked, before CRIU lets the tasks run. It tells the agent the vhost is restored and holds
# the tasks until the agent says "resume": when the job's every vhost is restored and its
# network configured on every node (CRIU ignores the exit status here: it can only wait).
#
# If the agent dies meanwhile, either wait gives up within a second and the job carries on:
# a crashed agent never leaves a job frozen. The agent is known by its pid and its start time
# (field 22 of /proc/PID/stat), so a recycled pid is not taken for it.
[ -n "$COHORT_HOOK_DIR" ] || exit 0
case "${COHORT_RESTORE:-0}:$CRTOOLS_SCRIPT_ACTION" in
  0:network-lock) message="locked"; want="go" ;;
  0:post-dump) message="dumped $(stat -c %s "$COHORT_LOG_PATH" 2>/dev/null || echo -1)"; want="commit" ;;
  1:pre-resume) message="restored"; want="resume" ;;
  *) exit 0 ;;
esac
agent_alive() {
  local stat
  stat=$(cat "/proc/$COHORT_AGENT_PID/stat" 2>/dev/null) || return 1
  [ -z "$COHORT_AGENT_START" ] && return 0
  # Fields after "(comm) ": state is the 1st, starttime the 20th.
  set -- ${stat##*) }
  [ "$1" != Z ] && [ "${20}" = "$COHORT_AGENT_START" ]
}
# Read-write opens never block on a FIFO, whether or not the agent still has it open.
exec 3<>"$COHORT_HOOK_DIR/event" 4<>"$COHORT_HOOK_DIR/decision"
echo "$message" >&3
while :; do
  if read -r -t 1 decision <&4; then
    [ "$decision" = "$want" ]
    exit
  fi
  agent_alive || exit 1
done
