#!/bin/bash
# Real tests of cohort-init and cohort-rsh: namespaces, mounts, the spawn
# service and a CRIU dump + restore.  Run as root: make -C native check
#
# Environment:
#   COHORT_CRIU       CRIU binary (default /opt/cohort/bin/criu)
#   COHORT_CRIU_WAIT  seconds to wait for it to appear (default 900; 0: don't wait)
#   COHORT_SPAWN_PORT port of the spawn tests (default 7207)
#   KEEP=1            keep the work directory even when every test passed
#
# Every process a test starts is recorded and killed on exit, even on
# failure.  Only those: a process counts as ours if its command line
# holds one of our hostnames, which carry this script's pid.
set -u -o pipefail

HERE=$(cd "$(dirname "$0")/.." && pwd)
INIT=$HERE/build/cohort-init
RSH=$HERE/build/cohort-rsh
# CRIU reads the limits of a job's processes through it when root lacks CAP_SYS_RESOURCE. As
# ./NAME from its directory: LD_PRELOAD splits at spaces, which a checkout's path may hold.
PRELOAD=./libcohort-prlimit.so
CRIU=${COHORT_CRIU:-/opt/cohort/bin/criu}
CRIU_WAIT=${COHORT_CRIU_WAIT:-900}
PORT=${COHORT_SPAWN_PORT:-7207}
TAG=ct$$
# Not under /tmp: a vhost has its own /tmp, so the node could not see the files.
WORK=$(mktemp -d /var/tmp/cohort-native-test.XXXXXX)
STARTED=()
PASSED=0 FAILED=0 SKIPPED=0

die() { echo "run.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "must run as root (creates namespaces)"
[ -x "$INIT" ] && [ -x "$RSH" ] || die "build first: make -C $HERE"

fail() { echo "    FAIL: $*"; return 1; }
note() { echo "    $*"; }

# shellcheck source=owner.sh
. "$HERE/tests/owner.sh"

# ---- processes ----------------------------------------------------------

# 0 if pid is alive (not a zombie) and one of ours.
ours() {
	local pid=$1 state
	state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ] || return 1
	tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qx "vh-[a-z0-9]*-$TAG"
}

alive() {
	local state
	state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
	[ -n "$state" ] && [ "$state" != Z ]
}

# wait_gone PID SECONDS
wait_gone() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		alive "$1" || return 0
		sleep 0.1
	done
	return 1
}

# Processes (not zombies) whose pid namespace is $1 (as readlink prints it).
pidns_members() {
	local p
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$1" ] && alive "${p#/proc/}" && echo "${p#/proc/}"
	done
}

# Processes whose command line holds one of our hostnames with this word.
tagged_processes() {
	local p
	for p in /proc/[0-9]*; do
		tr '\0' '\n' 2>/dev/null <"$p/cmdline" | grep -qx "vh-$1-$TAG" && alive "${p#/proc/}" && echo "${p#/proc/}"
	done
}

register() { STARTED+=("$1"); }

# Kill what the tests started: the recorded pids, and any other process
# carrying one of our hostnames (a launch the script was interrupted in,
# before it could record the pid).  Killing a pid 1 ends its whole vhost.
kill_started() {
	local pid
	for pid in "${STARTED[@]}" $(tagged_processes '[a-z0-9]*'); do
		if ours "$pid"; then
			kill -9 "$pid" 2>/dev/null
			wait_gone "$pid" 5 || echo "run.sh: pid $pid did not die" >&2
		fi
	done
}

cleanup() {
	kill_started
	owner_accounts_remove
	if [ "$FAILED" = 0 ] && [ "${KEEP:-0}" != 1 ]; then
		rm -rf "$WORK"
	else
		echo "work directory kept: $WORK"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# kill_vhost PID NS: kill -9 one of our inits, check nothing of its vhost is left.
kill_vhost() {
	local pid=$1 ns=$2 left
	ours "$pid" && kill -9 "$pid"
	wait_gone "$pid" 10 || { fail "pid 1 ($pid) still alive after kill -9"; return 1; }
	left=$(pidns_members "$ns")
	[ -z "$left" ] || { fail "processes left in $ns: $left"; return 1; }
}

# Numbers the counter wrote to a log: must be 0, 1, 2... with no gap or repeat.
# Prints the last one.
counter_last() {
	{ grep -E '^[0-9]+$' "$1" || true; } | awk 'NR - 1 != $1 { print "gap at line " NR ": " $1; bad = 1; exit }
		{ last = $1 } END { if (!bad) print last; exit bad }'
}

# wait_counter LOG MIN SECONDS: wait until the counter reaches MIN.
wait_counter() {
	local i last
	for ((i = 0; i < $3 * 10; i++)); do
		last=$(counter_last "$1") || { fail "counter broken: $last"; return 1; }
		[ -n "$last" ] && [ "$last" -ge "$2" ] && return 0
		sleep 0.1
	done
	fail "counter did not reach $2 (last: ${last:-none})"
}

# ---- tests --------------------------------------------------------------

test_basic() {
	local host=vh-test-$TAG log=$WORK/basic.log st=$WORK/basic.status pid ns lines
	pid=$("$INIT" --hostname "$host" --log "$log" --status "$st" -- \
		sh -c 'hostname; echo $$; ls /tmp | wc -l; sleep 1; exit 3') ||
		{ fail "launcher exited $?"; return 1; }
	[[ $pid =~ ^[0-9]+$ ]] || { fail "launcher printed '$pid', not a pid"; return 1; }
	register "$pid"
	note "pid 1 of the vhost: $pid"
	ns=$(readlink "/proc/$pid/ns/pid")
	[ "$ns" != "$(readlink /proc/self/ns/pid)" ] || { fail "no new pid namespace"; return 1; }
	wait_gone "$pid" 10 || { fail "init did not exit after its main process"; return 1; }
	[ "$(cat "$st" 2>/dev/null)" = "exited 3" ] || { fail "status file: '$(cat "$st" 2>&1)'"; return 1; }
	[ ! -e "$st.tmp" ] || { fail "$st.tmp left behind"; return 1; }
	mapfile -t lines < <(grep -v '^cohort-init:' "$log")
	note "log: ${lines[*]}"
	[ "${lines[0]:-}" = "$host" ] || { fail "hostname in the vhost: '${lines[0]:-}'"; return 1; }
	[[ ${lines[1]:-} =~ ^[0-9]+$ ]] && [ "${lines[1]}" -le 10 ] ||
		{ fail "pid in the vhost: '${lines[1]:-}' (not a new pid namespace?)"; return 1; }
	[ "${lines[2]:-}" = 0 ] || { fail "/tmp in the vhost not empty: '${lines[2]:-}' entries"; return 1; }
	[ -z "$(pidns_members "$ns")" ] || { fail "processes left in $ns"; return 1; }
}

test_signal_forwarding() {
	local log=$WORK/sig.log st=$WORK/sig.status pid ns
	pid=$("$INIT" --hostname "vh-sig-$TAG" --log "$log" --status "$st" -- sleep 30) ||
		{ fail "launcher exited $?"; return 1; }
	register "$pid"
	ns=$(readlink "/proc/$pid/ns/pid")
	# pid 1 must not depend on the launcher: it is gone, so pid 1 was re-parented.
	[ "$(awk '/^PPid:/ {print $2}' "/proc/$pid/status")" != $$ ] || { fail "init still a child of the test"; return 1; }
	[ "$(ls "/proc/$pid/fd" | wc -l)" = 4 ] || { fail "pid 1 fds: $(ls -l "/proc/$pid/fd")"; return 1; }
	kill -TERM "$pid"
	wait_gone "$pid" 10 || { fail "SIGTERM did not end the vhost"; return 1; }
	[ "$(cat "$st" 2>/dev/null)" = "signaled 15" ] || { fail "status file: '$(cat "$st" 2>&1)'"; return 1; }
	[ -z "$(pidns_members "$ns")" ] || { fail "processes left in $ns"; return 1; }
}

# --stdin, --err-log/--order: stdin from a file, stdout and stderr kept apart by
# pid 1 with the order of their chunks, and SIGUSR1 forwarded to the main process.
test_stdio() {
	local w=$WORK/stdio pid recs
	mkdir -p "$w"
	printf 'first\nsecond\n' >"$w/in"
	pid=$("$INIT" --hostname "vh-stdio-$TAG" --log "$w/out" --err-log "$w/err" --order "$w/order" \
		--stdin "$w/in" --status "$w/st" -- sh -c 'trap "echo usr1; exit 4" USR1
			read a; echo "out $a"; sleep 0.3; echo "err $a" >&2; read b; sleep 0.3; echo "out $b"
			while :; do sleep 0.1; done') ||
		{ fail "launcher exited $?"; return 1; }
	register "$pid"
	sleep 1.5
	kill -USR1 "$pid"
	wait_gone "$pid" 10 || { fail "SIGUSR1 did not reach the main process"; return 1; }
	[ "$(cat "$w/st" 2>/dev/null)" = "exited 4" ] || { fail "status file: '$(cat "$w/st" 2>&1)'"; return 1; }
	[ "$(cat "$w/out")" = "$(printf 'out first\nout second\nusr1')" ] || { fail "stdout: $(cat "$w/out")"; return 1; }
	# (sh may add that the signal also ended its sleep, in the same process group.)
	[ "$(head -1 "$w/err")" = "err first" ] || { fail "stderr: $(cat "$w/err")"; return 1; }
	# Records: stream bit and length, in the order written. The first three only: what comes
	# after "usr1" depends on whether the signal found sh in a sleep (then sh may report the
	# sleep's death on stderr before its trap prints).
	recs=$(od -An -tx4 -v -N12 "$w/order" | tr -s ' \n' ' ')
	note "order records:$recs"
	[ "$recs" = " 0000000a 8000000a 0000000b " ] || { fail "order: '$recs'"; return 1; }
	od -An -tx4 -v "$w/order" | tr -s ' \n' '\n' | grep -qx 00000005 ||
		{ fail "no record of stdout's 'usr1' line: $(od -An -tx4 -v "$w/order")"; return 1; }
}

test_launch_errors() {
	local out rc err=$WORK/errors.err left
	out=$("$INIT" --hostname "vh-missing-$TAG" --log "$WORK/missing.log" --status "$WORK/missing.status" \
		-- cohort-no-such-command arg 2>"$err")
	rc=$?
	note "missing command: exit $rc, stderr: $(cat "$err")"
	[ "$rc" = 127 ] || { fail "exit code $rc, expected 127"; return 1; }
	[ -z "$out" ] || { fail "printed '$out' on stdout"; return 1; }
	grep -q "^cohort-init: cohort-no-such-command: command not found$" "$err" || { fail "stderr: $(cat "$err")"; return 1; }
	[ ! -e "$WORK/missing.status" ] || { fail "a status file was written"; return 1; }
	left=$(tagged_processes missing)
	[ -z "$left" ] || { fail "processes left behind: $left"; return 1; }

	echo "not a program" >"$WORK/noexec"
	chmod 644 "$WORK/noexec"
	"$INIT" --hostname "vh-noexec-$TAG" --log "$WORK/noexec.log" --status "$WORK/noexec.status" \
		-- "$WORK/noexec" >/dev/null 2>"$err"
	rc=$?
	note "not executable: exit $rc, stderr: $(cat "$err")"
	[ "$rc" = 127 ] || { fail "exit code $rc, expected 127"; return 1; }

	"$INIT" --hostname "vh-cwd-$TAG" --log "$WORK/cwd.log" --status "$WORK/cwd.status" \
		--cwd /nonexistent-dir -- true >/dev/null 2>"$err"
	rc=$?
	note "bad --cwd: exit $rc, stderr: $(cat "$err")"
	[ "$rc" = 1 ] && grep -q "chdir /nonexistent-dir" "$err" || { fail "exit code $rc, expected 1"; return 1; }

	"$INIT" --hostname "vh-tmplog-$TAG" --log /tmp/x.log --status "$WORK/tmplog.status" \
		-- true >/dev/null 2>"$err"
	rc=$?
	note "log under /tmp: exit $rc, stderr: $(head -1 "$err")"
	[ "$rc" != 0 ] || { fail "a log under /tmp was accepted"; return 1; }

	"$INIT" --hostname "vh-port-$TAG" --log "$WORK/port.log" --status "$WORK/port.status" \
		--spawn-port "$PORT" --token-file "$WORK/no-such-token" -- true >/dev/null 2>"$err"
	rc=$?
	note "missing token file: exit $rc, stderr: $(cat "$err")"
	[ "$rc" = 1 ] || { fail "exit code $rc, expected 1"; return 1; }
	for w in noexec cwd tmplog port; do
		left=$(tagged_processes $w)
		[ -z "$left" ] || { fail "processes left behind ($w): $left"; return 1; }
	done
}

test_spawn() {
	local tok=$WORK/token pid ns out rc err=$WORK/spawn.err in_vhost
	head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tok"
	echo >>"$tok"
	pid=$("$INIT" --hostname "vh-spawn-$TAG" --log "$WORK/spawn.log" --status "$WORK/spawn.status" \
		--spawn-port "$PORT" --token-file "$tok" -- sleep 30) ||
		{ fail "launcher exited $?"; return 1; }
	register "$pid"
	ns=$(readlink "/proc/$pid/ns/pid")
	in_vhost=(nsenter "--net=/proc/$pid/ns/net")

	out=$(COHORT_TOKEN_FILE=$tok "${in_vhost[@]}" "$RSH" 127.0.0.1 echo hello 2>"$err")
	rc=$?
	note "cohort-rsh 127.0.0.1 echo hello -> '$out' (exit $rc)"
	[ "$rc" = 0 ] && [ "$out" = hello ] || { fail "stderr: $(cat "$err")"; kill_vhost "$pid" "$ns"; return 1; }

	# The words are joined and run by sh -c inside the vhost (its pid and uts namespaces).
	out=$(COHORT_TOKEN=$(cat "$tok") "${in_vhost[@]}" "$RSH" -p "$PORT" 127.0.0.1 'echo $(hostname)' '$$' 2>"$err")
	note "hostname and pid of a spawned shell: '$out'"
	[[ $out =~ ^vh-spawn-$TAG\ [0-9]+$ ]] && [ "${out##* }" -le 10 ] ||
		{ fail "spawned command not inside the vhost: '$out' $(cat "$err")"; kill_vhost "$pid" "$ns"; return 1; }

	# stdin is relayed, and its EOF reaches the remote command.
	head -c 1000000 /dev/urandom >"$WORK/blob"
	COHORT_TOKEN_FILE=$tok "${in_vhost[@]}" "$RSH" 127.0.0.1 cat <"$WORK/blob" >"$WORK/blob.back" 2>"$err"
	cmp -s "$WORK/blob" "$WORK/blob.back" || { fail "1 MB through cat came back different: $(cat "$err")"; kill_vhost "$pid" "$ns"; return 1; }
	note "1 MB relayed through 'cat' unchanged"

	out=$(COHORT_TOKEN=wrong-token "${in_vhost[@]}" "$RSH" 127.0.0.1 echo hello 2>"$err")
	rc=$?
	note "wrong token: exit $rc, stdout '$out', stderr: $(cat "$err")"
	[ "$rc" = 255 ] && [ -z "$out" ] && grep -q "bad token" "$err" || { fail "wrong token not refused"; kill_vhost "$pid" "$ns"; return 1; }

	out=$("${in_vhost[@]}" bash -c "exec 3<>/dev/tcp/127.0.0.1/$PORT; printf 'HELLO\n' >&3; cat <&3" 2>&1)
	note "malformed header: '$out'"
	[[ $out == "error: "* ]] || { fail "malformed header not refused"; kill_vhost "$pid" "$ns"; return 1; }

	COHORT_TOKEN_FILE=$tok "${in_vhost[@]}" "$RSH" -p 1 127.0.0.1 true 2>"$err"
	rc=$?
	note "nothing listening: exit $rc, stderr: $(cat "$err")"
	[ "$rc" = 255 ] || { fail "exit code $rc, expected 255"; kill_vhost "$pid" "$ns"; return 1; }

	kill_vhost "$pid" "$ns" || return 1
	[ ! -e "$WORK/spawn.status" ] || { fail "status file written after kill -9"; return 1; }
}

criu_available() {
	local waited=0
	while [ ! -x "$CRIU" ]; do
		if [ "$waited" -ge "$CRIU_WAIT" ]; then
			return 1
		fi
		[ "$waited" = 0 ] && note "waiting up to ${CRIU_WAIT}s for $CRIU to be installed"
		sleep 10
		waited=$((waited + 10))
	done
	note "$("$CRIU" --version 2>&1 | head -1)"
}

CRIU_COMMON=(--tcp-established --network-lock nftables --ext-mount-map auto
	--enable-external-masters --enable-external-sharing)

criu_log_tail() {
	echo "    --- tail of $1"
	tail -n 25 "$1" 2>/dev/null | sed 's/^/    | /'
}

# criu_dump PID DIR: dumps (and so ends) the tree of our init PID into DIR.
criu_dump() {
	if ! (cd "$HERE/build" && LD_PRELOAD=$PRELOAD "$CRIU" dump -t "$1" -D "$2" "${CRIU_COMMON[@]}" -v4 -o dump.log); then
		fail "criu dump failed"
		criu_log_tail "$2/dump.log"
		return 1
	fi
}

# criu_restore DIR PIDFILE LOGNAME: prints the restored pid 1.
criu_restore() {
	rm -f "$2"
	if ! "$CRIU" restore -D "$1" -d --root / "${CRIU_COMMON[@]}" --pidfile "$2" -v4 -o "$3" >&2; then
		fail "criu restore failed" >&2
		criu_log_tail "$1/$3" >&2
		return 1
	fi
	cat "$2"
}

test_criu() {
	local tok=$WORK/criu.token log=$WORK/criu.log st=$WORK/criu.status img=$WORK/img
	local pid ns size last out restored t0
	if ! criu_available; then
		note "SKIP: $CRIU not found"
		return 2
	fi
	echo "criu-test-token" >"$tok"
	mkdir -p "$img"
	pid=$("$INIT" --hostname "vh-criu-$TAG" --log "$log" --status "$st" \
		--spawn-port "$PORT" --token-file "$tok" -- \
		sh -c 'i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done') ||
		{ fail "launcher exited $?"; return 1; }
	register "$pid"
	ns=$(readlink "/proc/$pid/ns/pid")
	wait_counter "$log" 5 10 || return 1

	t0=$(date +%s.%N)
	criu_dump "$pid" "$img" || return 1
	note "dump took $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s, image $(du -sh "$img" | cut -f1)"
	wait_gone "$pid" 5 || { fail "tree still alive after dump"; return 1; }
	[ -z "$(pidns_members "$ns")" ] || { fail "processes left after the dump"; return 1; }
	# The tree is dead: the log has its dump-time size now.
	size=$(stat -c %s "$log")
	last=$(counter_last "$log") || { fail "counter broken before restore: $last"; return 1; }
	note "dumped at counter $last, log size $size"

	restored=$(criu_restore "$img" "$WORK/restore.pid" restore.log) || return 1
	register "$restored"
	note "restored pid 1: $restored"
	ours "$restored" || { fail "restored pid $restored is not our init"; return 1; }
	ns=$(readlink "/proc/$restored/ns/pid")
	wait_counter "$log" $((last + 5)) 10 || { kill_vhost "$restored" "$ns"; return 1; }
	out=$(tail -c +$((size + 1)) "$log" | grep -E '^[0-9]+$' | head -1)
	[ "$out" = $((last + 1)) ] || { fail "first number after restore: $out, expected $((last + 1))"; kill_vhost "$restored" "$ns"; return 1; }
	note "counter continued: $last -> $out ... $(counter_last "$log")"

	out=$(COHORT_TOKEN_FILE=$tok nsenter "--net=/proc/$restored/ns/net" "$RSH" -p "$PORT" 127.0.0.1 'echo restored $(hostname)' 2>&1)
	note "spawn service after restore: '$out'"
	[ "$out" = "restored vh-criu-$TAG" ] || { fail "spawn service broken after restore"; kill_vhost "$restored" "$ns"; return 1; }
	kill_vhost "$restored" "$ns" || return 1
	[ ! -e "$st" ] || { fail "status file written after kill -9"; return 1; }

	# Restart from the same images again: the log grew since the dump, so it
	# must be cut back to its dump-time size first (CRIU checks the size).
	truncate -s "$size" "$log"
	restored=$(criu_restore "$img" "$WORK/restore2.pid" restore2.log) || return 1
	register "$restored"
	ns=$(readlink "/proc/$restored/ns/pid")
	wait_counter "$log" $((last + 3)) 10 || { kill_vhost "$restored" "$ns"; return 1; }
	note "second restore of the same images: counter $last -> $(counter_last "$log")"
	kill_vhost "$restored" "$ns"
}

# A connection that stays open across the checkpoint: the vhost's main
# process is a cohort-rsh connected to the vhost's own spawn service
# (both ends inside the vhost, as for mpirun and its daemons), and the
# counter runs on the far side, its output relayed through TCP to the log.
# cohort-rsh's stdin is a pipe that stays open, so the connection is
# ESTABLISHED in both directions when it is dumped.
test_criu_spawned_tcp() {
	local tok=$WORK/tcp.token log=$WORK/tcp.log img=$WORK/img-tcp pid ns last restored
	if ! criu_available; then
		note "SKIP: $CRIU not found"
		return 2
	fi
	echo "tcp-test-token" >"$tok"
	mkdir -p "$img"
	pid=$("$INIT" --hostname "vh-tcp-$TAG" --log "$log" --status "$WORK/tcp.status" \
		--spawn-port "$PORT" --token-file "$tok" -- \
		sh -c 'sleep 100000 | COHORT_TOKEN_FILE=$0 "$1" 127.0.0.1 "$2"' "$tok" "$RSH" \
		'i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done') ||
		{ fail "launcher exited $?"; return 1; }
	register "$pid"
	ns=$(readlink "/proc/$pid/ns/pid")
	wait_counter "$log" 5 10 || { kill_vhost "$pid" "$ns"; return 1; }
	note "vhost tree: $(for p in $(pidns_members "$ns"); do cat "/proc/$p/comm" 2>/dev/null; done | tr '\n' ' ')"
	criu_dump "$pid" "$img" || return 1
	wait_gone "$pid" 5 || { fail "tree still alive after dump"; return 1; }
	last=$(counter_last "$log") || { fail "counter broken before restore: $last"; return 1; }
	ls "$img"/tcp-stream-*.img >/dev/null 2>&1 || { fail "no TCP stream in the image"; return 1; }
	note "TCP sockets in the dump: $(grep -o 'state TCP_[A-Z0-9_]*' "$img/dump.log" | sort -u | cut -d' ' -f2 | tr '\n' ' ')"
	restored=$(criu_restore "$img" "$WORK/restore-tcp.pid" restore.log) || return 1
	register "$restored"
	ns=$(readlink "/proc/$restored/ns/pid")
	wait_counter "$log" $((last + 5)) 10 || { kill_vhost "$restored" "$ns"; return 1; }
	note "counter relayed over the restored TCP connection: $last -> $(counter_last "$log")"
	kill_vhost "$restored" "$ns"
}

# The vhost has its own devpts: its pseudo-terminals are numbered from 0 in
# it, so restoring them never collides with the node's own (here the node
# holds its pty 0 while the vhost is restored with its pty 0).
test_criu_private_pty() {
	local holder rc
	if ! criu_available; then
		note "SKIP: $CRIU not found"
		return 2
	fi
	holder=
	if [ ! -e /dev/pts/0 ]; then
		script -qfc "sleep 600" /dev/null </dev/null >/dev/null 2>&1 &
		holder=$!
		sleep 0.5
	fi
	private_pty_dump_restore
	rc=$?
	[ -n "$holder" ] && kill "$holder" 2>/dev/null
	return $rc
}

private_pty_dump_restore() {
	local log=$WORK/pty.log img=$WORK/img-pty pid ns last restored inside outside
	mkdir -p "$img"
	# script(1) holds a pty pair (its master, sleep on the slave) beside the counter.
	pid=$("$INIT" --hostname "vh-pty-$TAG" --log "$log" --status "$WORK/pty.status" -- \
		sh -c 'echo "devpts $(stat -c %d /dev/pts)"; script -qfc "sleep 100000" /dev/null &
			i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done') ||
		{ fail "launcher exited $?"; return 1; }
	register "$pid"
	ns=$(readlink "/proc/$pid/ns/pid")
	wait_counter "$log" 5 10 || { kill_vhost "$pid" "$ns"; return 1; }
	inside=$(awk '/^devpts/ {print $2}' "$log")
	outside=$(stat -c %d /dev/pts)
	[ -n "$inside" ] && [ "$inside" != "$outside" ] ||
		{ fail "the vhost uses the node's devpts ($inside, node $outside)"; kill_vhost "$pid" "$ns"; return 1; }
	pgrep -x script --ns "$pid" --nslist pid >/dev/null ||
		{ fail "no pty holder in the vhost"; kill_vhost "$pid" "$ns"; return 1; }
	note "vhost devpts $inside, node $outside"
	criu_dump "$pid" "$img" || return 1
	wait_gone "$pid" 5 || { fail "tree still alive after dump"; return 1; }
	last=$(counter_last "$log") || { fail "counter broken before restore: $last"; return 1; }
	[ -e /dev/pts/0 ] || { fail "the node holds no pty 0"; return 1; }
	restored=$(criu_restore "$img" "$WORK/restore-pty.pid" restore.log) || return 1
	register "$restored"
	ns=$(readlink "/proc/$restored/ns/pid")
	wait_counter "$log" $((last + 5)) 10 || { kill_vhost "$restored" "$ns"; return 1; }
	pgrep -x script --ns "$restored" --nslist pid >/dev/null ||
		{ fail "the pty holder was not restored"; kill_vhost "$restored" "$ns"; return 1; }
	note "restored with its pty 0 while the node's pty 0 is busy: $last -> $(counter_last "$log")"
	kill_vhost "$restored" "$ns"
}

# A namespace handle of the node (what `ip netns add` mounts under /run/netns) is not in a
# vhost's mount table: a checkpoint would record it, and its restore need it again.
test_namespace_handles_hidden() {
	local host=vh-nsfs-$TAG handle=$WORK/netns-handle pid ns n rc=0
	touch "$handle"
	mount --bind /proc/self/ns/net "$handle" || { fail "cannot bind a namespace handle"; return 1; }
	pid=$("$INIT" --hostname "$host" --log "$WORK/nsfs.log" --status "$WORK/nsfs.status" -- sleep 30)
	if [[ $pid =~ ^[0-9]+$ ]]; then
		register "$pid"
		ns=$(readlink "/proc/$pid/ns/pid")
		n=$(grep -c ' - nsfs ' "/proc/$pid/mountinfo")
		[ "$n" = 0 ] || { fail "$n namespace handle(s) in the vhost's mounts"; rc=1; }
		grep -q ' - nsfs ' /proc/self/mountinfo || { fail "the node lost its handle"; rc=1; }
		kill_vhost "$pid" "$ns" || rc=1
	else
		fail "launcher printed '$pid', not a pid"
		rc=1
	fi
	umount "$handle"
	[ "$rc" = 0 ] && note "the node's namespace handle is not in the vhost"
	return "$rc"
}

test_node_unchanged() {
	local d
	d=$(diff "$WORK/mountinfo.before" <(node_mounts)) || { fail "node mounts changed:"; echo "$d"; return 1; }
	[ "$(hostname)" = "$(cat "$WORK/hostname.before")" ] || { fail "node hostname changed to $(hostname)"; return 1; }
	note "node mountinfo and hostname unchanged"
}

run() {
	local rc
	echo "== $1"
	"$1"
	rc=$?
	case $rc in
	0) echo "   PASS $1"; PASSED=$((PASSED + 1)) ;;
	2) echo "   SKIP $1"; SKIPPED=$((SKIPPED + 1)) ;;
	*) echo "   FAIL $1"; FAILED=$((FAILED + 1)) ;;
	esac
}

# The node's mounts, but for namespace handles (/run/netns/NAME), which other software on the
# node (an emulated cluster, `ip netns`) makes and removes while these tests run.
node_mounts() { grep -v ' - nsfs ' /proc/self/mountinfo; }
node_mounts >"$WORK/mountinfo.before"
hostname >"$WORK/hostname.before"

run test_basic
run test_signal_forwarding
run test_stdio
run test_launch_errors
run test_spawn
run test_criu
run test_criu_spawned_tcp
run test_criu_private_pty
if owner_accounts_create; then
	run test_owner
	run test_owner_refused
	run test_owner_criu
else
	echo "   FAIL: cannot create the test accounts $OWNER_USER, $OWNER_GROUP"
	FAILED=$((FAILED + 1))
fi
run test_namespace_handles_hidden
run test_node_unchanged

echo "passed $PASSED, failed $FAILED, skipped $SKIPPED"
[ "$FAILED" = 0 ]
