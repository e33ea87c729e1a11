#!/usr/bin/env bash
# The main demo: a real MPI job (4 ranks, C, shared memory + TCP inside its vhost) is run
# under Cohort, checkpointed while it runs, checkpointed again and stopped, then restarted;
# its final result is compared with an uninterrupted run of the same program.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cohort="$repo/cohort"
ring="$repo/mpi-tests/target/mpi/ring"
iterations=${DEMO_ITERATIONS:-400}
ranks=${DEMO_RANKS:-4}

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" >&2; "$@"; }

[[ -x "$ring" ]] || { echo "demo: $ring is missing; run ./cohort setup" >&2; exit 1; }

step "Reference: the same program with plain mpirun, uninterrupted"
expected=$(mpirun --allow-run-as-root --oversubscribe -np "$ranks" "$ring" "$iterations" 0 | tail -1)
echo "$expected"

step "Run the job under Cohort (unchanged mpirun command line, in its own virtual host)"
job=$(run "$cohort" run --detach --name demo-ring -- mpirun -np "$ranks" "$ring" "$iterations" 20)
echo "job id: $job"
for _ in $(seq 100); do
  "$cohort" logs "$job" | grep -q "^iter 100 " && break
  sleep 0.2
done
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
