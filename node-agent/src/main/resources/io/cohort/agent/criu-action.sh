#!/bin/sh
# CRIU action script installed by the Cohort node agent.
#
# post-dump runs after the images are written and before CRIU resumes or kills the
# frozen tasks. It tells the agent the dump is done (with the size of the job's output
# log at that instant) and holds the tasks frozen until the coordinator has decided:
# "commit" -> exit 0 (CRIU resumes, or kills for --stop); anything else -> exit 1 (CRIU
# aborts the dump and the tasks carry on).
[ "$CRTOOLS_SCRIPT_ACTION" = "post-dump" ] || exit 0
[ -n "$COHORT_HOOK_DIR" ] || exit 0
size=$(stat -c %s "$COHORT_LOG_PATH" 2>/dev/null || echo -1)
echo "dumped $size" > "$COHORT_HOOK_DIR/event"
read -r decision < "$COHORT_HOOK_DIR/decision"
[ "$decision" = "commit" ]
