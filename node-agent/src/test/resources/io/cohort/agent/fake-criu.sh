#!/bin/bash
# Plays CRIU's side of a dump for the agent's unit tests, as criu dump does with
# --action-script: writes image files, runs the action script at the network lock and again
# after the dump (post-dump), and exits as CRIU would: 0 once the hook said commit, 1 when it
# did not (the tasks carry on). What happened is written to $CONTROL/outcome.
#   $1 images dir   $2 action script   $3 control dir
# Control files: "fail" -> fail the dump before post-dump; "hold" -> wait while it exists
# before the post-dump hook; "at-post-dump" is created when the hook is about to run.
images=$1 script=$2 control=$3
head -c 4096 /dev/zero > "$images/pages-1.img"
echo "inventory" > "$images/inventory.img"
if ! CRTOOLS_SCRIPT_ACTION=network-lock "$script"; then
  echo "aborted-at-lock" > "$control/outcome"
  exit 1
fi
if [ -e "$control/fail" ]; then
  echo "Error (criu/cr-dump.c:2099): Dumping FAILED." > "$(dirname "$images")/dump.log"
  echo "dump-failed" > "$control/outcome"
  exit 1
fi
while [ -e "$control/hold" ]; do sleep 0.01; done
touch "$control/at-post-dump"
if CRTOOLS_SCRIPT_ACTION=post-dump "$script"; then
  echo "committed" > "$control/outcome"
  exit 0
fi
echo "released-by-abort" > "$control/outcome"
exit 1
