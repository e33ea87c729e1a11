#!/usr/bin/env bash
# The main demo, in two parts.
#  1. One machine, no daemon: a real MPI job (4 ranks, C) runs under Cohort in its own
#     virtual host, is checkpointed while it runs, checkpointed again and stopped, then
#     restarted; its output is compared with an uninterrupted run of the same program.
#  2. A cluster emulated on this machine (network namespaces, coordinator and agent
#     daemons): the same job over two vhosts on nodes n1 and n2 (mpirun spans them: shared
#     memory inside a vhost, TCP between them through the kernel's VXLAN), checkpointed and
#     stopped, restarted on nodes n2 and n3.
#
# It runs from a clone anywhere (/tmp included) and on a machine of any speed: the job runs
# from a work directory that every vhost sees (a vhost has its own /tmp and /dev/shm), and
# it holds three quarters of the way through until the demo lets it go, so every checkpoint
# finds it running however long a step (a JVM's start, say) takes. Holding changes nothing
# in its output.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cohort="$repo/cohort"
built="$repo/mpi-tests/target/mpi/ring"
iterations=${DEMO_ITERATIONS:-400}
hold_at=$((iterations * 3 / 4))
ranks=${DEMO_RANKS:-4}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

# Waits until the job's output has a line starting with TEXT; fails after 5 minutes.
await_output() {
  local job=$1 text=$2 deadline=$((SECONDS + 300))
  until "$cohort" logs "$job" | grep -q "^$text"; do
    if ((SECONDS > deadline)); then
      echo "demo: job $job did not print '$text' within 5 minutes" >&2
      exit 1
    fi
    sleep 0.5
  done
}

[[ -x "$built" ]] || { echo "demo: $built is missing; run ./cohort setup" >&2; exit 1; }

# The demo's jobs read no input, and `cohort run` passes on a standard input that is not a
# terminal: whatever the demo itself was started with (a pipe, under a scheduler) is not theirs.
exec </dev/null

# The work directory: the job's working directory, its program and its hold files.
work=$(mktemp -d /var/tmp/cohort-demo.XXXXXX)
cleanup() {
  rm -rf "$work"
}
trap cleanup EXIT
cp "$built" "$work/ring"
cd "$work"
ring="$work/ring"

step "Reference: the same program with plain mpirun, uninterrupted"
expected=$(mpirun --allow-run-as-root --oversubscribe -np "$ranks" "$ring" "$iterations" 0 | tail -1)
echo "$expected"

step "Run the job under Cohort (unchanged mpirun command line, in its own virtual host)"
echo "(it holds before iteration $hold_at until $work/go1 exists)"
job=$(run "$cohort" run --detach --name demo-ring -- \
  mpirun -np "$ranks" "$ring" "$iterations" 20 4 "$hold_at" "$work/go1")
echo "job id: $job"
await_output "$job" "iter 100 "
run "$cohort" logs "$job" | tail -2

step "Checkpoint while it runs (the job carries on)"
run "$cohort" checkpoint "$job"
sleep 1
run "$cohort" logs "$job" | tail -1

step "Checkpoint again and stop the job"
ckpt=$(run "$cohort" checkpoint --stop "$job")
run "$cohort" ps
run "$cohort" checkpoints "$job"

step "Restart from checkpoint $ckpt and follow the job to its end"
touch "$work/go1"
run "$cohort" restart "$ckpt"

step "Compare with the uninterrupted run"
got=$("$cohort" logs "$job" | tail -1)
echo "uninterrupted: $expected"
echo "under Cohort:  $got"
if [[ "$got" == "$expected" ]] && diff <("$cohort" logs "$job") \
    <(mpirun --allow-run-as-root --oversubscribe -np "$ranks" "$ring" "$iterations" 0) >/dev/null; then
  echo "MATCH: the checkpointed and restarted job produced exactly the output of an uninterrupted run"
else
  echo "MISMATCH" >&2
  exit 1
fi

# Part 2 uses its own state directory and network names, so it never touches a cluster of yours.
export COHORT_HOME=${DEMO_CLUSTER_HOME:-/var/lib/cohort-demo}
cleanup() {
  "$cohort" cluster down >/dev/null 2>&1 || true
  rm -rf "$work"
}
"$cohort" cluster down >/dev/null 2>&1 || true
rm -rf "$COHORT_HOME/cluster" # the demo's own state: start from a clean catalog

step "Multinode: start a cluster of 3 nodes emulated on this machine"
run "$cohort" cluster up --nodes 3 --prefix cohortdemo --subnet 198.18.90
run "$cohort" nodes

step "Run the job over 2 vhosts on nodes n1 and n2 (plain mpirun; Cohort gives it the hostfile)"
job=$(run "$cohort" run --detach --nodes n1,n2 --slots 2 -- \
  mpirun -np "$ranks" "$ring" "$iterations" 20 4 "$hold_at" "$work/go2")
await_output "$job" "iter 100 "
run "$cohort" ps

step "Checkpoint both vhosts as one consistent cut, then checkpoint and stop"
run "$cohort" checkpoint "$job"
ckpt=$(run "$cohort" checkpoint --stop "$job")
run "$cohort" checkpoints "$job"

step "Restart on nodes n2 and n3 (images streamed and verified) and follow it"
touch "$work/go2"
run "$cohort" restart "$ckpt" --nodes n2,n3
run "$cohort" ps

step "Compare with the uninterrupted run"
if diff <("$cohort" logs "$job") \
    <(mpirun --allow-run-as-root --oversubscribe -np "$ranks" "$ring" "$iterations" 0) >/dev/null; then
  echo "MATCH: moved from n1+n2 to n2+n3 mid-run, same output as an uninterrupted run"
else
  echo "MISMATCH" >&2
  exit 1
fi
