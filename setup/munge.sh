#!/usr/bin/env bash
# Cohort: MUNGE, which authenticates users who call the coordinator from another machine
# (the CLI sends a credential from `munge`, the coordinator checks it with libmunge),
# as Slurm does.
#
#   sudo setup/munge.sh           install Debian's munge if missing, make the key if
#                                 missing, start munged if it does not answer
#   sudo setup/munge.sh --start   only start munged if it does not answer (no install, no
#                                 key: `cohort cluster up` runs this)
#
# Idempotent: when munged answers, it checks and changes nothing. On a real cluster every
# node (and every machine users call from) runs munged with the same key: copy
# /etc/munge/munge.key from one node to the others (owner munge, mode 0400) before starting
# munged there, as Slurm's documentation says.
set -Eeuo pipefail

readonly KEY=/etc/munge/munge.key
readonly SOCKET=/run/munge/munge.socket.2

say() { printf 'cohort setup: %s\n' "$*"; }
die() {
    printf 'cohort setup: munge: %s\n' "$1" >&2
    [[ -z "${2:-}" ]] || printf 'cohort setup:   what to do: %s\n' "$2" >&2
    exit 1
}

# answers: a credential made and checked through munged (the round trip users' calls take).
answers() {
    command -v munge >/dev/null && command -v unmunge >/dev/null &&
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1
}

install_package() {
    if dpkg-query -W -f='${db:Status-Status}' munge 2>/dev/null | grep -qx installed; then
        return
    fi
    say "munge: installing Debian's munge ..."
    # The package's own start is refused where services may not start (a container's
    # policy-rc.d); start_daemon below does it then.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends munge \
        >/dev/null 2>&1; then
        apt-get update -q >/dev/null 2>&1 || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends munge \
            >/dev/null ||
            die "apt-get install munge failed" "run 'apt-get install munge' to see why, then re-run"
    fi
}

# The shared secret of the MUNGE realm: made here only when the machine has none (the package
# makes one too), readable by munged only (munged refuses to start otherwise).
ensure_key() {
    if [[ ! -s "$KEY" ]]; then
        say "munge: creating the key $KEY (a real cluster copies one key to every node)"
        install -d -o munge -g munge -m 0700 /etc/munge
        rm -f -- "$KEY"
        runuser -u munge -- mungekey --create --keyfile="$KEY" ||
            die "mungekey could not create $KEY" "see its message above"
    fi
    chown munge:munge "$KEY"
    chmod 0400 "$KEY"
}

# munged as the package starts it: its init script (start-stop-daemon as user munge), which
# also makes /run/munge; with systemd running, the init script hands over to the unit.
start_daemon() {
    if answers; then
        say "munge: munged ... ok (answers on $SOCKET)"
        return
    fi
    [[ -x /usr/sbin/munged && -x /etc/init.d/munge ]] ||
        die "munged is not installed" "run ./cohort setup (it installs Debian's munge)"
    [[ -s "$KEY" ]] || die "no MUNGE key at $KEY" "run ./cohort setup (it creates one)"
    /etc/init.d/munge start >/dev/null 2>&1 || true
    local i
    for i in $(seq 50); do
        answers && break
        sleep 0.1
    done
    answers || die "munged does not answer on $SOCKET after starting it" \
        "see /var/log/munge/munged.log; check that $KEY is owned by munge with mode 0400"
    say "munge: munged ... started"
}

if [[ $(id -u) -ne 0 ]]; then
    die "must run as root (it installs munge and starts munged)" "try: sudo $0"
fi
case "${1:-}" in
    --start) start_daemon ;;
    "")
        install_package
        ensure_key
        start_daemon
        ;;
    *) die "unknown option: $1" "usage: $0 [--start]" ;;
esac
