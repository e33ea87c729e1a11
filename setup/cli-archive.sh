#!/usr/bin/env bash
# The CLI's class-data sharing archive: cli/target/cohort.jsa, the classes a short command
# loads (picocli, gRPC, Netty, protobuf, the messages), parsed and verified once here instead
# of at every start. `cohort` uses it only while it is newer than the jar, and the JVM checks
# it against the jar besides: a missing, stale or damaged archive only costs speed.
#
# usage: cli-archive.sh [--force]     (setup runs it; idempotent: nothing to do when fresh)
set -Eeuo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
jar="$repo/cli/target/cohort.jar"
jsa="$repo/cli/target/cohort.jsa"
java=/usr/lib/jvm/java-17-openjdk-amd64/bin/java
[[ -x "$java" ]] || java=java

say() { printf 'cohort setup: %s\n' "$*"; }

if [[ "${1:-}" != --force && -f "$jsa" && "$jsa" -nt "$jar" ]]; then
  say "CLI class archive ... ok (up to date)"
  exit 0
fi
work=$(mktemp -d)
coordinator=""
cleanup() {
  [[ -z "$coordinator" ]] || kill "$coordinator" 2>/dev/null || true
  [[ -z "$coordinator" ]] || wait "$coordinator" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The classes to archive: those that the quick commands load, embedded and against a
# coordinator daemon (a private one on a free loopback port, its home in $work).
# A catalog with one stopped job and its checkpoint, so that reading the catalog is trained
# too (if its format moves on, only the archive misses those classes).
catalog() {
  mkdir -p "$1/jobs" "$1/checkpoints"
  cat >"$1/jobs/1.json" <<'JSON'
{"info": {"job_id": "1", "spec": {"name": "train", "command": ["true"], "cwd": "/"},
  "state": "JOB_STATE_STOPPED", "created_unix_ms": "1", "incarnation": 1,
  "vhosts": [{"vhost_id": "1-0", "node": "local", "hostname": "job1-0"}]},
 "token": "0", "next_epoch": "2"}
JSON
  cat >"$1/checkpoints/1.1.json" <<'JSON'
{"checkpoint_id": "1.1", "job_id": "1", "epoch": "1", "created_unix_ms": "1",
 "image_bytes": "1", "vhosts": [{"vhost_id": "1-0", "node": "local", "hostname": "job1-0"}],
 "stopped_job": true, "timings": {"freeze_ms": "1", "total_ms": "1"}}
JSON
}
catalog "$work/home/coordinator"
catalog "$work/coordinator"

n=0
train() {
  n=$((n + 1))
  COHORT_HOME="$work/home" COHORT_NATIVE_DIR="$repo/native/build" "$java" -Xshare:auto \
    -XX:DumpLoadedClassList="$work/$n.classes" -XX:+UseSerialGC \
    -Dorg.slf4j.simpleLogger.defaultLogLevel=off -jar "$jar" "$@" >/dev/null 2>&1 || true
}
train --help
train ps
train ps --json
train checkpoints
train nodes
train logs 1
port=$(( 20000 + RANDOM % 20000 ))
# The coordinator proves itself with a certificate of a CA the CLI trusts: a throwaway one (with
# its checkpoint key, which a daemon needs), so that the TLS classes of a command from another
# machine are archived too.
COHORT_HOME="$work/home" "$java" -jar "$jar" ca init >/dev/null
COHORT_HOME="$work/home" "$java" -jar "$jar" ca issue coordinator --address 127.0.0.1 >/dev/null
export COHORT_CA="$work/home/tls/ca.crt"
COHORT_HOME="$work/home" "$java" -jar "$jar" coordinator --listen "127.0.0.1:$port" \
  --home "$work/coordinator" >"$work/coordinator.log" 2>&1 &
coordinator=$!
# The CLI on a coordinator's machine talks to it over its Unix socket: train that path.
socket="$work/coordinator/socket/client.sock"
for _ in $(seq 100); do
  [ -S "$socket" ] && break
  sleep 0.1
done
for cmd in ps checkpoints nodes "logs 1" "wait 1" "ps --json"; do
  # shellcheck disable=SC2086 # the command's words
  train $cmd --coordinator "unix:$socket"
done
# From another machine it is TCP: native/'s cohort-tls-dial does the TLS, and each call carries
# a MUNGE credential (without munged the call is refused, after its path's classes are loaded).
for cmd in ps checkpoints "ps --json"; do
  # shellcheck disable=SC2086 # the command's words
  train $cmd --coordinator "127.0.0.1:$port"
done
awk '!seen[$0]++' "$work"/*.classes >"$work/all.classes"

if "$java" -Xshare:dump -XX:SharedClassListFile="$work/all.classes" \
    -XX:SharedArchiveFile="$work/cohort.jsa" -cp "$jar" >"$work/dump.log" 2>&1; then
  mv -f "$work/cohort.jsa" "$jsa"
  say "CLI class archive ... built $jsa ($(grep -vc '^[#@]' "$work/all.classes") classes)"
else
  # Not fatal: the CLI works without it, only slower to start.
  rm -f "$jsa"
  say "CLI class archive ... FAILED (the CLI works without it, slower to start):"
  tail -5 "$work/dump.log" >&2
fi
