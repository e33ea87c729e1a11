#!/bin/bash
# Plays CRIU's side of a restore for the agent's unit tests, as criu restore -d does with
# --action-script: writes the pidfile, runs the action script at pre-resume (which holds the
# "restored tasks" until the agent says resume), then writes "resumed" to
# $CONTROL/restore-outcome and exits 0.
#   $1 pidfile   $2 action script   $3 control dir
# Control file: "fail-restore" -> fail before pre-resume, as a broken image would.
pidfile=$1 script=$2 control=$3
if [ -e "$control/fail-restore" ]; then
  echo "Error (criu/cr-restore.c:1234): Restoring FAILED." > "$(dirname "$pidfile")/restore.log"
  exit 1
fi
echo $$ > "$pidfile"
CRTOOLS_SCRIPT_ACTION=pre-resume "$script"
echo resumed > "$control/restore-outcome"
