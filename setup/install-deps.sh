#!/usr/bin/env bash
# Cohort: install everything the build, the node agent and the MPI tests need.
#
#   sudo setup/install-deps.sh
#
# What it installs (all locations are fixed; see setup/README.md):
#   1. Debian packages (Open MPI 4.1.4, JDK 17, Maven, gcc, iproute2, ...) through
#      the system apt, only the ones that are missing.
#   2. CRIU >= 4.2 from Debian sid into the private prefix /opt/cohort/criu, run
#      through the prefix's own dynamic loader by the wrapper /opt/cohort/bin/criu
#      (Debian 12's criu 3.17 does not work on current kernels, and the sid package
#      cannot be installed on bookworm because it needs a newer libc6).
#   3. Open MPI's Java bindings: mpi.jar compiled from Debian's openmpi sources
#      (Debian ships the JNI library but not the jar) at
#      /opt/cohort/openmpi-java/mpi.jar, and installed into the local Maven
#      repository as org.open-mpi:mpi:4.1.4.
#
# Properties:
#   - idempotent: every step checks first and does nothing when its result is
#     present, so a second run takes well under a second;
#   - the system's apt configuration, sources and package lists are never
#     changed: CRIU and the Open MPI sources are fetched with a private apt
#     configuration in a temporary directory;
#   - safe to re-run after a failure: results are built in temporary directories
#     next to their final place and renamed into place only when complete.
#
# Environment (all optional):
#   COHORT_PREFIX          install root                 (default /opt/cohort)
#   COHORT_CRIU_SUITE      Debian suite to take CRIU from (default sid)
#   COHORT_DEBIAN_MIRROR   Debian mirror URI; default: the one already configured
#                          in /etc/apt/sources.list(.d)
#   COHORT_M2_REPO         local Maven repository       (default ~/.m2/repository)

set -Eeuo pipefail

# ---------------------------------------------------------------------------
# Settings
# ---------------------------------------------------------------------------
readonly PREFIX="${COHORT_PREFIX:-/opt/cohort}"
readonly CRIU_PREFIX="$PREFIX/criu"
readonly CRIU_WRAPPER="$PREFIX/bin/criu"
readonly CRIU_SUITE="${COHORT_CRIU_SUITE:-sid}"
readonly CRIU_MIN_VERSION="4.2"
readonly MULTIARCH="x86_64-linux-gnu"
readonly MPI_JAVA_DIR="$PREFIX/openmpi-java"
readonly MPI_JAR="$MPI_JAVA_DIR/mpi.jar"
readonly MPI_JAR_VERSION="4.1.4"
readonly MPI_JNI_DIR="/usr/lib/$MULTIARCH/openmpi/lib"
readonly M2_REPO="${COHORT_M2_REPO:-${HOME:-/root}/.m2/repository}"
readonly M2_MPI_JAR="$M2_REPO/org/open-mpi/mpi/$MPI_JAR_VERSION/mpi-$MPI_JAR_VERSION.jar"
readonly MAVEN_INSTALL_PLUGIN="org.apache.maven.plugins:maven-install-plugin:3.1.1"
readonly JDK17_HOME="/usr/lib/jvm/java-17-openjdk-amd64"
readonly DEBIAN_KEYRING="/usr/share/keyrings/debian-archive-keyring.gpg"
LOG="$PREFIX/install-deps.log"   # moved to /tmp when $PREFIX is not writable

# Debian packages the project needs.  libopenmpi3 ships the JNI library
# libmpi_java.so.40; libopenmpi-dev adds the unversioned libmpi_java.so link that
# System.loadLibrary("mpi_java") looks for.  dpkg-dev provides dpkg-source (and
# patch) for unpacking the openmpi source package; debian-archive-keyring verifies
# the private apt fetches.  openssl makes the cluster's CA and daemon certificates
# (`cohort ca`, `cohort cluster up`).  nftables (`nft`): each agent refuses what its
# vhosts send to the node itself, where the daemons listen.  libssl-dev and
# libmunge-dev (its munge.h) build native/cohort-tls-dial, the CLI's TLS to a
# coordinator over TCP, which also makes the first call's MUNGE credential.
readonly APT_PACKAGES=(
    openmpi-bin libopenmpi-dev libopenmpi3 openmpi-common
    iproute2 nftables util-linux procps tar gzip openssl
    make gcc libc6-dev libssl-dev libmunge-dev
    openjdk-17-jdk-headless maven
    dpkg-dev xz-utils ca-certificates debian-archive-keyring
)

# ---------------------------------------------------------------------------
# Output, errors, temporary files
# ---------------------------------------------------------------------------
STEP="start"
TMP_ROOT=""            # per-run scratch directory under $PREFIX, removed on exit
APT_UPDATED=0          # system 'apt-get update' runs at most once per run
DID_WORK=0             # for the summary line
START_US=${EPOCHREALTIME/./}   # for the duration in the summary

say()  { printf 'cohort setup: %s\n' "$*"; }
ok()   { say "$1 ... ok${2:+ ($2)}"; }

# die MESSAGE [HINT]: print a clear failure message and stop.
die() {
    trap - ERR
    say "FAILED: $1" >&2
    [[ -n "${2:-}" ]] && say "what to do: $2" >&2
    if [[ $LOG_STARTED -eq 1 && -s "$LOG" ]]; then
        say "last lines of $LOG:" >&2
        tail -n 15 "$LOG" | sed 's/^/    /' >&2
    fi
    exit 1
}

# Any unexpected failing command ends up here (set -E propagates the trap into
# functions).
on_error() {
    local rc=$? line=${BASH_LINENO[0]} cmd=$BASH_COMMAND
    die "step '$STEP': command failed with exit code $rc (line $line): $cmd" \
        "fix the cause shown above, then re-run setup/install-deps.sh (it is safe to re-run)"
}
trap on_error ERR

cleanup() {
    if [[ -n "$TMP_ROOT" && -d "$TMP_ROOT" ]]; then
        rm -rf -- "$TMP_ROOT"
    fi
}
trap cleanup EXIT
# Make sure the EXIT trap runs on ^C and kill, too; a re-run finishes the job.
trap 'say "interrupted (re-run to finish)" >&2; exit 130' INT
trap 'say "terminated (re-run to finish)" >&2; exit 143' TERM

# log_start: begin a fresh log on the first step that does real work, so a
# run that finds everything in place keeps the log of the last install.
LOG_STARTED=0
log_start() {
    if [[ $LOG_STARTED -eq 0 ]]; then
        printf '# setup/install-deps.sh, %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')" >"$LOG"
        LOG_STARTED=1
    fi
}

# run CMD...: run a noisy command with its output going to the log only.  The
# lock descriptor (9) is closed for it, so that nothing it leaves running (a
# service started by a package's postinst) keeps holding the install lock.
run() {
    log_start
    printf '\n+ %s\n' "$*" >>"$LOG"
    "$@" 9>&- >>"$LOG" 2>&1
}

# Scratch space on the same filesystem as $PREFIX, so finished results can be
# renamed into place atomically.  Sets TMP_ROOT (not to be called in $(...)).
ensure_tmp_root() {
    if [[ -z "$TMP_ROOT" ]]; then
        TMP_ROOT=$(mktemp -d "$PREFIX/.tmp.XXXXXX")
    fi
}

need_root() {
    [[ $EUID -eq 0 ]] || die "$1 needs root" "run: sudo $0"
}

# replace_dir NEW FINAL: move the finished directory NEW to FINAL, replacing any
# previous (possibly broken) FINAL in one rename.
replace_dir() {
    local new=$1 final=$2 old
    old="$final.old.$$"
    if [[ -e "$final" ]]; then
        mv -T -- "$final" "$old"
    fi
    mv -T -- "$new" "$final"
    rm -rf -- "$old"
}

# ---------------------------------------------------------------------------
# Private apt: fetch from a Debian suite without touching the system's apt
# configuration, sources, package lists or dpkg database.
# ---------------------------------------------------------------------------

# debian_mirror: print the URI of the Debian mirror the system already uses for
# its own release (deb822 .sources files first, then one-line .list files).
debian_mirror() {
    if [[ -n "${COHORT_DEBIAN_MIRROR:-}" ]]; then
        printf '%s\n' "$COHORT_DEBIAN_MIRROR"
        return
    fi
    local codename uri f
    codename=$(. /etc/os-release && printf '%s' "${VERSION_CODENAME:-}")
    [[ -n "$codename" ]] || return 1
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$f" ]] || continue
        # One deb822 stanza per paragraph; take the first enabled 'deb' stanza
        # whose Suites contain the release codename itself.
        uri=$(awk -v want="$codename" '
            BEGIN { RS = ""; FS = "\n" }
            {
                types = ""; uris = ""; suites = ""; enabled = "yes"
                for (i = 1; i <= NF; i++) {
                    line = $i
                    if (line ~ /^[ \t#]/ || index(line, ":") == 0) continue
                    key = tolower(substr(line, 1, index(line, ":") - 1))
                    val = substr(line, index(line, ":") + 1)
                    if (key == "types") types = " " val " "
                    else if (key == "uris") uris = val
                    else if (key == "suites") suites = val
                    else if (key == "enabled") enabled = tolower(val)
                }
                gsub(/[ \t]/, "", enabled)
                if (enabled == "no" || types !~ /[ \t]deb[ \t]/) next
                n = split(suites, s, /[ \t]+/)
                for (j = 1; j <= n; j++) if (s[j] == want) {
                    split(uris, u, /[ \t]+/)
                    for (k = 1; k in u; k++) if (u[k] != "") { print u[k]; exit }
                }
            }' "$f")
        if [[ -n "$uri" ]]; then printf '%s\n' "${uri%/}"; return; fi
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$f" ]] || continue
        # deb [options] URI SUITE COMPONENT...
        uri=$(awk -v want="$codename" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == want) { print $i; exit }
            }' "$f")
        if [[ -n "$uri" ]]; then printf '%s\n' "${uri%/}"; return; fi
    done
    return 1
}

# private_apt_init DIR LINE: prepare a private apt state in DIR whose only
# source is LINE (one-line sources.list format) and fetch its index.  Sets the
# global array PAPT with the apt options that select this state.
PAPT=()
private_apt_init() {
    local dir=$1 line=$2
    mkdir -p "$dir"/{lists/partial,archives/partial,cache,parts,prefs.d}
    printf '%s\n' "$line" >"$dir/sources.list"
    PAPT=(
        -o "Dir::Etc::SourceList=$dir/sources.list"
        -o "Dir::Etc::SourceParts=$dir/parts"
        -o "Dir::Etc::Preferences=$dir/preferences"
        -o "Dir::Etc::PreferencesParts=$dir/prefs.d"
        -o "Dir::State::Lists=$dir/lists"
        -o "Dir::State::status=/dev/null"
        -o "Dir::Cache=$dir/cache"
        -o "Dir::Cache::archives=$dir/archives"
        -o "APT::Sandbox::User=root"
        # sid's Release file carries a Valid-Until date a few days ahead; a
        # mirror that serves a frozen snapshot (as some build farms do) would
        # otherwise be refused as "expired".  Signatures are still checked.
        -o "Acquire::Check-Valid-Until=false"
    )
    run apt-get "${PAPT[@]}" --error-on=any update ||
        die "could not fetch the package index for: $line" \
            "check that the Debian mirror is reachable (apt-get update works), or set COHORT_DEBIAN_MIRROR=URI, then re-run"
}

# signed_by: the apt option that pins the Debian archive keyring, when present.
signed_by() {
    if [[ -r "$DEBIAN_KEYRING" ]]; then printf '[signed-by=%s] ' "$DEBIAN_KEYRING"; fi
}

# ---------------------------------------------------------------------------
# Step 1: Debian packages
# ---------------------------------------------------------------------------
apt_update_once() {
    if [[ $APT_UPDATED -eq 0 ]]; then
        run apt-get update ||
            die "apt-get update failed" "check the network and /etc/apt/sources.list*, then re-run"
        APT_UPDATED=1
    fi
}

step_apt_packages() {
    STEP="debian packages"
    local missing=() pkg status
    for pkg in "${APT_PACKAGES[@]}"; do
        status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
        [[ "$status" == "installed" ]] || missing+=("$pkg")
    done
    if [[ ${#missing[@]} -eq 0 ]]; then
        ok "debian packages (${#APT_PACKAGES[@]})" "already installed"
        return
    fi
    need_root "installing Debian packages"
    log_start
    say "debian packages: installing ${missing[*]} ..."
    apt_update_once
    DEBIAN_FRONTEND=noninteractive run apt-get install -y --no-install-recommends "${missing[@]}" ||
        die "apt-get install ${missing[*]} failed" \
            "run 'apt-get install ${missing[*]}' by hand to see why (held packages? dpkg interrupted: 'dpkg --configure -a'), then re-run"
    DID_WORK=1
    ok "debian packages (${#missing[@]} installed)"
}

# ---------------------------------------------------------------------------
# Step 2: CRIU from Debian sid in a private prefix
# ---------------------------------------------------------------------------

# criu_version CRIU_COMMAND...: print the version CRIU reports, or nothing.
criu_version() {
    "$@" --version 2>/dev/null | awk '/^Version:/ { print $2; exit }' || true
}

version_ok() {
    [[ -n "$1" ]] && dpkg --compare-versions "$1" ge "$CRIU_MIN_VERSION"
}

# write_criu_wrapper FILE PREFIX: a bash wrapper that runs PREFIX's criu with
# PREFIX's own loader and libraries (sid's libc, libnftables, ...), so nothing
# of it mixes with the system's libraries.  Programs CRIU starts (ip, tar,
# action scripts) are ordinary system programs: --library-path, unlike
# LD_LIBRARY_PATH, is not inherited by them.
write_criu_wrapper() {
    local file=$1 prefix=$2
    cat >"$file" <<EOF
#!/bin/bash
# Generated by Cohort's setup/install-deps.sh: CRIU from Debian $CRIU_SUITE, run
# through its own dynamic loader and libraries in $prefix.
CRIU_PREFIX='$prefix'
CRIU_LIB="\$CRIU_PREFIX/usr/lib/$MULTIARCH"
exec "\$CRIU_LIB/ld-linux-x86-64.so.2" --inhibit-cache --argv0 criu \\
    --library-path "\$CRIU_LIB:\$CRIU_PREFIX/lib/$MULTIARCH" \\
    "\$CRIU_PREFIX/usr/sbin/criu" "\$@"
EOF
    chmod 755 "$file"
}

# verify_criu WRAPPER PREFIX: the installed CRIU loads entirely from PREFIX,
# is new enough, and accepts this kernel.
verify_criu() {
    local wrapper=$1 prefix=$2 lib version libs out
    lib="$prefix/usr/lib/$MULTIARCH"
    # Every shared library (libnftables for --network-lock nftables included)
    # must resolve inside the prefix.
    libs=$("$lib/ld-linux-x86-64.so.2" --inhibit-cache --library-path "$lib" \
        --list "$prefix/usr/sbin/criu" 2>&1) ||
        die "the CRIU binary in $prefix does not load: $libs" "remove $prefix and re-run"
    if grep -q 'not found' <<<"$libs"; then
        die "CRIU libraries missing from $prefix: $(grep 'not found' <<<"$libs" | tr -s ' \t\n' ' ')" \
            "a dependency of the $CRIU_SUITE package was not resolved; remove $prefix and re-run"
    fi
    if ! grep -q "libnftables.so.1 => $lib/" <<<"$libs"; then
        die "CRIU in $prefix is not linked against its own libnftables (needed for --network-lock nftables)" \
            "check the $CRIU_SUITE criu package's dependencies"
    fi
    version=$(criu_version "$wrapper")
    version_ok "$version" ||
        die "CRIU in $prefix reports version '${version:-none}', need >= $CRIU_MIN_VERSION" \
            "Debian $CRIU_SUITE no longer has a suitable criu? set COHORT_CRIU_SUITE (e.g. experimental) and re-run"
    out=$("$wrapper" check 2>&1) || true
    printf '\n+ criu check\n%s\n' "$out" >>"$LOG"
    grep -q 'Looks good' <<<"$out" ||
        die "'criu check' failed: $(tail -n 3 <<<"$out" | tr '\n' ' ')" \
            "CRIU needs root, a kernel with checkpoint/restore support and a whole mount tree (it fails inside a plain chroot); fix that and re-run"
    CRIU_VERSION=$version
}

CRIU_VERSION=""
step_criu() {
    STEP="criu"
    local version
    version=$(criu_version "$CRIU_WRAPPER")
    if [[ -x "$CRIU_WRAPPER" ]] && version_ok "$version"; then
        ok "criu $version" "already installed"
        CRIU_VERSION=$version
        return
    fi
    need_root "installing CRIU"
    log_start
    [[ "$(dpkg --print-architecture)" == amd64 ]] ||
        die "the private CRIU install supports amd64 only" "install CRIU >= $CRIU_MIN_VERSION by other means as $CRIU_WRAPPER"
    say "criu: fetching criu >= $CRIU_MIN_VERSION from Debian $CRIU_SUITE into $CRIU_PREFIX ..."

    local mirror tmp aptdir debs newprefix pkgs deb
    mirror=$(debian_mirror) ||
        die "no Debian mirror found in /etc/apt/sources.list or /etc/apt/sources.list.d/*.sources" \
            "set COHORT_DEBIAN_MIRROR to the URI of a Debian mirror and re-run"
    ensure_tmp_root
    tmp=$TMP_ROOT
    aptdir="$tmp/apt-$CRIU_SUITE"
    debs="$tmp/criu-debs"
    newprefix="$PREFIX/.criu.new.$$"
    mkdir -p "$debs"
    private_apt_init "$aptdir" "deb $(signed_by)$mirror $CRIU_SUITE main"

    # Every package criu needs, recursively, as if nothing were installed
    # (status=/dev/null): sid's libc6 and loader come along.  Lines starting
    # with a space are dependency edges, '<name>' are virtual packages.
    pkgs=$(apt-cache "${PAPT[@]}" depends --recurse --no-recommends --no-suggests \
            --no-conflicts --no-breaks --no-replaces --no-enhances criu 2>>"$LOG" |
           grep -v -e '^[[:space:]]' -e '^<' | sort -u) ||
        die "could not resolve the dependencies of criu in Debian $CRIU_SUITE" "see the log, then re-run"
    [[ -n "$pkgs" ]] || die "criu not found in Debian $CRIU_SUITE" "set COHORT_CRIU_SUITE and re-run"
    # shellcheck disable=SC2086  # package names are words
    (cd "$debs" && run apt-get "${PAPT[@]}" download $pkgs) ||
        die "downloading criu and its dependencies from $mirror ($CRIU_SUITE) failed" \
            "check network access to the mirror and re-run"

    rm -rf -- "$newprefix"
    mkdir -p "$newprefix"
    for deb in "$debs"/*.deb; do
        run dpkg-deb -x "$deb" "$newprefix"
        dpkg-deb --show --showformat='${Package} ${Version}\n' "$deb" >>"$newprefix/PACKAGES"
    done
    [[ -x "$newprefix/usr/sbin/criu" && -x "$newprefix/usr/lib/$MULTIARCH/ld-linux-x86-64.so.2" ]] ||
        die "the extracted packages lack usr/sbin/criu or the loader usr/lib/$MULTIARCH/ld-linux-x86-64.so.2" \
            "the layout of the $CRIU_SUITE packages changed; adapt write_criu_wrapper in $0"
    # We use it only as a private runtime: drop documentation and man pages.
    rm -rf -- "$newprefix/usr/share/doc" "$newprefix/usr/share/man" "$newprefix/usr/share/locale" \
              "$newprefix/usr/share/lintian"

    # Check the new tree before it replaces anything.
    write_criu_wrapper "$tmp/criu-wrapper" "$newprefix"
    verify_criu "$tmp/criu-wrapper" "$newprefix"

    replace_dir "$newprefix" "$CRIU_PREFIX"
    mkdir -p "$(dirname "$CRIU_WRAPPER")"
    write_criu_wrapper "$CRIU_WRAPPER.new.$$" "$CRIU_PREFIX"
    mv -f -- "$CRIU_WRAPPER.new.$$" "$CRIU_WRAPPER"
    version=$(criu_version "$CRIU_WRAPPER")
    version_ok "$version" || die "the installed wrapper $CRIU_WRAPPER does not run" "re-run"
    DID_WORK=1
    ok "criu $version" "installed in $CRIU_PREFIX, wrapper $CRIU_WRAPPER, 'criu check': Looks good."
    CRIU_VERSION=$version
}

# ---------------------------------------------------------------------------
# Step 3: Open MPI Java bindings (mpi.jar) and the Maven artifact
# ---------------------------------------------------------------------------

# The JNI library System.loadLibrary("mpi_java") loads at run time.
MPI_JNI_LIB=""
find_mpi_jni() {
    local f
    for f in "$MPI_JNI_DIR/libmpi_java.so" "/usr/lib/$MULTIARCH/libmpi_java.so"; do
        if [[ -e "$f" ]]; then MPI_JNI_LIB=$(readlink -f "$f"); return 0; fi
    done
    return 1
}

# is_jar FILE: a non-empty zip that holds mpi/MPI.class (checked without
# starting a JVM, so the fast path stays fast).
is_jar() {
    [[ -s "$1" ]] && [[ "$(head -c 2 "$1")" == "PK" ]] && grep -q 'mpi/MPI.class' "$1"
}

build_mpi_jar() {
    local tmp aptdir srcdir version mirror codename javasrc
    ensure_tmp_root
    tmp=$TMP_ROOT
    aptdir="$tmp/apt-openmpi-src"
    srcdir="$tmp/openmpi-src"
    mkdir -p "$srcdir"
    # The source of the installed Open MPI ('4.1.4-3' for binary '4.1.4-3+b1').
    version=$(dpkg-query -W -f='${source:Version}' libopenmpi3)
    [[ "$version" == "$MPI_JAR_VERSION"-* ]] ||
        die "installed Open MPI is $version, this setup builds mpi.jar for $MPI_JAR_VERSION" \
            "update MPI_JAR_VERSION in $0 and the project's Maven dependency together"
    mirror=$(debian_mirror) ||
        die "no Debian mirror found in /etc/apt/sources.list*" "set COHORT_DEBIAN_MIRROR=URI and re-run"
    codename=$(. /etc/os-release && printf '%s' "$VERSION_CODENAME")
    private_apt_init "$aptdir" "deb-src $(signed_by)$mirror $codename main"
    (cd "$srcdir" && run apt-get "${PAPT[@]}" source --download-only "openmpi=$version") ||
        die "could not download the source package openmpi=$version" \
            "check network access to the Debian mirror and re-run"
    # dpkg-source checks the checksums and applies Debian's patches.
    (cd "$srcdir" && run dpkg-source -x ./openmpi_*.dsc openmpi) ||
        die "dpkg-source could not unpack openmpi $version" "see the log, then re-run"
    javasrc="$srcdir/openmpi/ompi/mpi/java/java"
    compgen -G "$javasrc/*.java" >/dev/null ||
        die "no Java sources at ompi/mpi/java/java in openmpi $version" "the source layout changed; adapt $0"

    # All classes are compiled together (they refer to each other circularly,
    # as Open MPI's own Makefile.am notes).  No template (.java.in) is involved
    # in 4.1.4.
    mkdir -p "$tmp/classes"
    run "$JDK17_HOME/bin/javac" --release 17 -encoding UTF-8 -nowarn -Xlint:none \
        -d "$tmp/classes" "$javasrc"/*.java ||
        die "javac failed on the Open MPI Java sources" "see the log, then re-run"
    printf 'Implementation-Title: Open MPI Java bindings\nImplementation-Version: %s\n' \
        "$version" >"$tmp/manifest.txt"
    mkdir -p "$MPI_JAVA_DIR"
    run "$JDK17_HOME/bin/jar" --create --file "$MPI_JAR.new.$$" --manifest "$tmp/manifest.txt" \
        -C "$tmp/classes" .
    is_jar "$MPI_JAR.new.$$" || die "the built mpi.jar looks wrong" "see the log, then re-run"
    mv -f -- "$MPI_JAR.new.$$" "$MPI_JAR"
    printf 'openmpi source %s, compiled by %s\n' "$version" \
        "$("$JDK17_HOME/bin/javac" -version 2>&1)" >"$MPI_JAVA_DIR/VERSION"
}

step_mpi_java() {
    STEP="openmpi java"
    find_mpi_jni ||
        die "libmpi_java.so not found in $MPI_JNI_DIR" "install libopenmpi-dev (step 1), then re-run"
    [[ -x "$JDK17_HOME/bin/javac" ]] ||
        die "JDK 17 not found at $JDK17_HOME" "install openjdk-17-jdk-headless, then re-run"

    if is_jar "$MPI_JAR"; then
        ok "openmpi java $MPI_JAR_VERSION: $MPI_JAR" "already built"
    else
        need_root "building $MPI_JAR"
        log_start
        say "openmpi java: building mpi.jar from Debian's openmpi sources ..."
        build_mpi_jar
        DID_WORK=1
        ok "openmpi java $MPI_JAR_VERSION: $MPI_JAR" "built"
    fi

    STEP="maven artifact"
    if [[ -s "$M2_MPI_JAR" ]]; then
        ok "maven org.open-mpi:mpi:$MPI_JAR_VERSION" "already in $M2_REPO"
    else
        JAVA_HOME="$JDK17_HOME" run mvn -B -q -Dmaven.repo.local="$M2_REPO" \
            "$MAVEN_INSTALL_PLUGIN:install-file" -Dfile="$MPI_JAR" \
            -DgroupId=org.open-mpi -DartifactId=mpi -Dversion="$MPI_JAR_VERSION" -Dpackaging=jar ||
            die "mvn install:install-file of $MPI_JAR failed" \
                "check that Maven Central is reachable (mvn needs $MAVEN_INSTALL_PLUGIN) and $M2_REPO is writable, then re-run"
        [[ -s "$M2_MPI_JAR" ]] || die "mvn did not install $M2_MPI_JAR" "see the log, then re-run"
        DID_WORK=1
        ok "maven org.open-mpi:mpi:$MPI_JAR_VERSION" "installed into $M2_REPO"
    fi
    ok "openmpi JNI library $MPI_JNI_LIB" "run Java ranks with -Djava.library.path=$MPI_JNI_DIR"
}

# ---------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------
main() {
    if [[ $EUID -eq 0 ]]; then
        mkdir -p "$PREFIX"
    elif [[ ! -d "$PREFIX" ]]; then
        die "$PREFIX does not exist yet and creating it needs root" "run: sudo $0"
    fi
    [[ -w "$PREFIX" ]] || LOG="${TMPDIR:-/tmp}/cohort-install-deps.$EUID.log"
    # One installer at a time (a developer and CI on the same machine); the
    # lock also makes it safe to clear what an interrupted run left behind.
    if [[ -w "$PREFIX" ]] && command -v flock >/dev/null; then
        exec 9>"$PREFIX/.install-deps.lock"
        flock -w 900 9 || die "another install-deps.sh holds $PREFIX/.install-deps.lock" "wait for it, then re-run"
        rm -rf -- "$PREFIX"/.tmp.* "$PREFIX"/.criu.new.* "$CRIU_PREFIX".old.* \
                  "$CRIU_WRAPPER".new.* "$MPI_JAR".new.* 2>/dev/null || true
    fi

    step_apt_packages
    step_criu
    step_mpi_java

    STEP="summary"
    local ms=$(( (${EPOCHREALTIME/./} - START_US) / 1000 ))
    say "done in $((ms / 1000)).$(printf '%01d' $((ms % 1000 / 100))) s: criu $CRIU_VERSION ($CRIU_WRAPPER), mpi.jar $MPI_JAR_VERSION ($MPI_JAR), JNI $MPI_JNI_DIR$([[ $DID_WORK -eq 1 ]] || printf ', nothing to do')"
}

main "$@"
