#!/usr/bin/env bash
# Single-node figures: checkpoint time, freeze time, restart time and image size of a C MPI
# job (3 ranks) and a Java MPI job (2 JVM ranks), each measured over several checkpoints.
#
#   scripts/bench-single-node.sh [REPEATS]      (after ./cohort setup; as root)
#
# Prints a table (medians, with min and max) and writes docs/benchmarks/single-node.md.
# Uses a private COHORT_HOME and kills what it started.
set -euo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
cohort="$repo/cohort"
repeats=${1:-5}
export COHORT_HOME
COHORT_HOME=$(mktemp -d /var/tmp/cohort-bench.XXXXXX)
jobs=()
cleanup() {
  for j in "${jobs[@]}"; do "$cohort" kill "$j" >/dev/null 2>&1 || true; done
  rm -rf "$COHORT_HOME"
}
trap cleanup EXIT

field() { sed -n "s/.*\"$1\":\"\{0,1\}\([0-9.]*\)\"\{0,1\}.*/\1/p"; }
stats() { sort -n | awk '{a[NR]=$1} END {printf "%s (%s–%s)", a[int((NR+1)/2)], a[1], a[NR]}'; }

measure() { # name, command...
  local name=$1; shift
  local job ck ckpts=() freezes=() totals=() sizes=() restarts=()
  job=$("$cohort" run --detach -- "$@"); jobs+=("$job")
  until "$cohort" logs "$job" | grep -q '^iter 20 '; do sleep 0.2; done
  for _ in $(seq "$repeats"); do
    ck=$("$cohort" checkpoint "$job" --json)
    totals+=("$(field total_ms <<<"$ck")"); freezes+=("$(field freeze_ms <<<"$ck")")
    sizes+=("$(field image_bytes <<<"$ck")")
    ckpts+=("$(field checkpoint <<<"$ck")")
  done
  local stop; stop=$("$cohort" checkpoint "$job" --stop --json)
  for _ in $(seq "$repeats"); do
    restarts+=("$("$cohort" restart "$(field checkpoint <<<"$stop")" --detach --json | field restart_ms)")
    "$cohort" kill "$job" >/dev/null 2>&1
  done
  printf '| %s | %s | %s | %s | %s | %s |\n' "$name" \
    "$(printf '%s\n' "${totals[@]}" | stats)" "$(printf '%s\n' "${freezes[@]}" | stats)" \
    "$(field freeze_ms <<<"$stop")" "$(printf '%s\n' "${restarts[@]}" | stats)" \
    "$(printf '%s\n' "${sizes[@]}" | awk '{s=$1} END {printf "%.1f", s/1e6}')"
}

ring="$repo/mpi-tests/target/mpi/ring"
classes="$repo/mpi-tests/target/classes"
{
  echo "Single node, $(nproc) cores, kernel $(uname -r), $("$cohort" doctor | awk '/criu version/ {print "CRIU " $4}'), $repeats repeats; median (min–max), milliseconds."
  echo
  echo '| job | checkpoint total | job frozen (continue) | frozen (--stop) | restart | image MB |'
  echo '| --- | --- | --- | --- | --- | --- |'
  measure "C ring, 3 ranks, 4 MiB each" mpirun -np 3 "$ring" 100000 20
  measure "Java ring, 2 JVM ranks" mpirun -np 2 java -XX:+UseSerialGC -Xmx128m \
    -cp "$classes:/opt/cohort/openmpi-java/mpi.jar" \
    -Djava.library.path=/usr/lib/x86_64-linux-gnu/openmpi/lib io.cohort.mpitests.Ring 100000 20
} | tee "$repo/docs/benchmarks/single-node.md"
