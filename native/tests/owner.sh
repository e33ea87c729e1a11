# Tests of the job's owner (--uid, --gid, --groups), sourced by run.sh: the
# main process and every spawned command run with exactly the owner's
# credentials and environment, before and after a CRIU dump + restore.
# A real unprivileged account and group are created for them and removed
# on exit (owner_accounts_remove, from run.sh's cleanup), even on failure.

OWNER_USER=cohortitn$$
OWNER_GROUP=cohortitg$$
OWNER_MADE=0

owner_accounts_create() {
	groupadd --system "$OWNER_GROUP" || return 1
	OWNER_MADE=1
	useradd --system --no-create-home --home-dir "/home/$OWNER_USER" --shell /bin/bash \
		--groups "$OWNER_GROUP" "$OWNER_USER" || return 1
	OWNER_MADE=2
	OWNER_UID=$(id -u "$OWNER_USER")
	OWNER_GID=$(id -g "$OWNER_USER")
	OWNER_GROUPS=$(id -G "$OWNER_USER" | tr ' ' ,)
	OWNER_OPTS=(--uid "$OWNER_UID" --gid "$OWNER_GID" --groups "$OWNER_GROUPS")
}

# Called after every process of the tests is gone (userdel refuses a user with processes).
owner_accounts_remove() {
	[ "$OWNER_MADE" -ge 2 ] && { userdel "$OWNER_USER" || echo "run.sh: userdel $OWNER_USER failed" >&2; }
	[ "$OWNER_MADE" -ge 1 ] && { groupdel "$OWNER_GROUP" || echo "run.sh: groupdel $OWNER_GROUP failed" >&2; }
	OWNER_MADE=0
}

# "Uid Gid Groups CapEff" of a process as the kernel has them: real, effective, saved and
# file-system ids, the groups sorted.
creds_of() {
	local ids groups
	ids=$(awk '/^Uid:/ {u = $2 "," $3 "," $4 "," $5} /^Gid:/ {g = $2 "," $3 "," $4 "," $5}
		/^CapEff:/ {c = $2} END {print u, g, c}' "$1")
	groups=$(awk '/^Groups:/ {for (i = 2; i <= NF; i++) print $i}' "$1" | sort -n | paste -sd,)
	echo "${ids% *} $groups ${ids##* }"
}

owner_creds() {
	local gs
	gs=$(tr ',' '\n' <<<"$OWNER_GROUPS" | sort -n | paste -sd,)
	echo "$OWNER_UID,$OWNER_UID,$OWNER_UID,$OWNER_UID $OWNER_GID,$OWNER_GID,$OWNER_GID,$OWNER_GID $gs 0000000000000000"
}

# Every process of the vhost of pid 1 $1 but pid 1 itself (root: it writes the status file)
# has the owner's credentials; $2 says when.
check_vhost_creds() {
	local pid1=$1 ns p want got n=0
	ns=$(readlink "/proc/$pid1/ns/pid")
	want=$(owner_creds)
	for p in $(pidns_members "$ns"); do
		[ "$p" = "$pid1" ] && continue
		# (the counter's sleeps come and go)
		cat "/proc/$p/status" >"$WORK/creds.status" 2>/dev/null || continue
		got=$(creds_of "$WORK/creds.status")
		[ "$got" = "$want" ] ||
			{ fail "$2: pid $p ($(cat "/proc/$p/comm")) runs as '$got', not '$want'"; return 1; }
		n=$((n + 1))
	done
	[ "$(awk '/^Uid:/ {print $3}' "/proc/$pid1/status")" = 0 ] || { fail "$2: pid 1 is not root"; return 1; }
	[ "$n" -ge 2 ] || { fail "$2: only $n process(es) besides pid 1"; return 1; }
	note "$2: all $n processes besides pid 1 run as $want"
}

test_owner() {
	local w=$WORK/owner tok=$WORK/owner.token pid ns out want
	mkdir -p "$w"
	echo "owner-token" >"$tok"
	pid=$("$INIT" --hostname "vh-owner-$TAG" --log "$w/out" --err-log "$w/err" --order "$w/order" \
		--status "$w/st" --cwd / --spawn-port "$PORT" --token-file "$tok" "${OWNER_OPTS[@]}" -- \
		sh -c 'echo "creds $(cat /proc/self/status | tr "\n" " ")"
			echo "env $HOME $USER $LOGNAME $SHELL"
			touch /tmp/t /dev/shm/s && echo "tmp writable"; exec sleep 60') ||
		{ fail "launcher exited $?: $(cat "$w/err")"; return 1; }
	register "$pid"
	ns=$(readlink "/proc/$pid/ns/pid")
	for _ in $(seq 50); do grep -qs "tmp writable" "$w/out" && break; sleep 0.1; done
	grep -q "^env /home/$OWNER_USER $OWNER_USER $OWNER_USER /bin/bash$" "$w/out" ||
		{ fail "environment: $(grep '^env' "$w/out") $(cat "$w/err")"; kill_vhost "$pid" "$ns"; return 1; }
	grep -q "tmp writable" "$w/out" || { fail "/tmp or /dev/shm not writable: $(cat "$w/err")"; kill_vhost "$pid" "$ns"; return 1; }
	note "main process: $(grep '^env' "$w/out"), tmp writable"

	# A command of the spawn service (how mpirun starts its daemons) is the owner's too.
	want=$(owner_creds)
	out=$(COHORT_TOKEN_FILE=$tok nsenter "--net=/proc/$pid/ns/net" "$RSH" 127.0.0.1 \
		'cat /proc/self/status; echo "env $HOME $USER"' 2>&1)
	printf '%s\n' "$out" >"$w/spawned"
	[ "$(creds_of "$w/spawned")" = "$want" ] ||
		{ fail "spawned command runs as '$(creds_of "$w/spawned")': $out"; kill_vhost "$pid" "$ns"; return 1; }
	[ "$(printf '%s\n' "$out" | tail -1)" = "env /home/$OWNER_USER $OWNER_USER" ] ||
		{ fail "spawned command's environment: $(printf '%s\n' "$out" | tail -1)"; kill_vhost "$pid" "$ns"; return 1; }
	note "spawned command runs as $want"
	COHORT_TOKEN_FILE=$tok nsenter "--net=/proc/$pid/ns/net" "$RSH" 127.0.0.1 'sleep 60' </dev/null >/dev/null 2>&1 &
	register $!
	for _ in $(seq 50); do [ "$(pidns_members "$ns" | wc -l)" -ge 3 ] && break; sleep 0.1; done
	check_vhost_creds "$pid" "running" || { kill_vhost "$pid" "$ns"; return 1; }
	kill_vhost "$pid" "$ns"
}

test_owner_refused() {
	local err=$WORK/owner-refused.err rc
	# A uid without an account: no environment to give it, so no job.
	"$INIT" --hostname "vh-noacct-$TAG" --log "$WORK/noacct.log" --status "$WORK/noacct.status" \
		--uid 3999999 --gid 3999999 --groups "" -- true >/dev/null 2>"$err"
	rc=$?
	note "uid without an account: exit $rc, stderr: $(cat "$err")"
	[ "$rc" = 1 ] && grep -q "uid 3999999 has no account on this node" "$err" ||
		{ fail "a uid without an account was accepted"; return 1; }
	[ ! -e "$WORK/noacct.status" ] || { fail "a status file was written"; return 1; }
	"$INIT" --hostname "vh-half-$TAG" --log "$WORK/half.log" --status "$WORK/half.status" \
		--uid "$OWNER_UID" -- true >/dev/null 2>"$err"
	rc=$?
	note "--uid alone: exit $rc, stderr: $(head -1 "$err")"
	[ "$rc" = 2 ] || { fail "--uid without --gid and --groups was accepted"; return 1; }
	[ -z "$(tagged_processes noacct)$(tagged_processes half)" ] || { fail "processes left behind"; return 1; }
}

# The owner's vhost through a dump and a restore: the restored processes have the owner's
# credentials (CRIU restores those of the image), and pid 1 still spawns as the owner.
test_owner_criu() {
	local tok=$WORK/owner-criu.token log=$WORK/owner-criu.log img=$WORK/img-owner pid ns last restored out
	if ! criu_available; then
		note "SKIP: $CRIU not found"
		return 2
	fi
	echo "owner-criu-token" >"$tok"
	mkdir -p "$img"
	pid=$("$INIT" --hostname "vh-ocriu-$TAG" --log "$log" --status "$WORK/owner-criu.status" --cwd / \
		--spawn-port "$PORT" --token-file "$tok" "${OWNER_OPTS[@]}" -- \
		sh -c 'sleep 100000 | COHORT_TOKEN=owner-criu-token "$0" 127.0.0.1 "$1"' "$RSH" \
		'i=0; while true; do echo $i; i=$((i+1)); sleep 0.2; done') ||
		{ fail "launcher exited $?"; return 1; }
	register "$pid"
	ns=$(readlink "/proc/$pid/ns/pid")
	wait_counter "$log" 5 10 || { kill_vhost "$pid" "$ns"; return 1; }
	check_vhost_creds "$pid" "before the dump" || { kill_vhost "$pid" "$ns"; return 1; }
	criu_dump "$pid" "$img" || return 1
	wait_gone "$pid" 5 || { fail "tree still alive after dump"; return 1; }
	last=$(counter_last "$log") || { fail "counter broken before restore: $last"; return 1; }
	restored=$(criu_restore "$img" "$WORK/restore-owner.pid" restore.log) || return 1
	register "$restored"
	ns=$(readlink "/proc/$restored/ns/pid")
	wait_counter "$log" $((last + 5)) 10 || { kill_vhost "$restored" "$ns"; return 1; }
	check_vhost_creds "$restored" "after the restore" || { kill_vhost "$restored" "$ns"; return 1; }
	out=$(COHORT_TOKEN_FILE=$tok nsenter "--net=/proc/$restored/ns/net" "$RSH" -p "$PORT" 127.0.0.1 'id -u' 2>&1)
	[ "$out" = "$OWNER_UID" ] || { fail "spawned after the restore as '$out', not $OWNER_UID"; kill_vhost "$restored" "$ns"; return 1; }
	note "counter $last -> $(counter_last "$log") after the restore; a new spawn runs as uid $out"
	kill_vhost "$restored" "$ns"
}
