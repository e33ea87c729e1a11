#!/usr/bin/env bash
# cohort setup: install what is missing, build what is stale, put `cohort` on PATH.
# Idempotent: a second run checks and changes nothing (a few seconds at most).
set -Eeuo pipefail

repo=$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)
jar="$repo/cli/target/cohort.jar"
jdk17=/usr/lib/jvm/java-17-openjdk-amd64

say() { printf 'cohort setup: %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
  echo "cohort setup: must run as root (it installs packages and CRIU); try: sudo $0" >&2
  exit 1
fi

# 1. Debian packages, CRIU 4.2+ in /opt/cohort/criu, Open MPI's mpi.jar.
bash "$repo/setup/install-deps.sh"

# 2. MUNGE (users calling the coordinator from other machines): Debian's munge, its key, munged.
bash "$repo/setup/munge.sh"

# 3. Native programs (make decides what is stale).
if make -q -C "$repo/native" >/dev/null 2>&1; then
  say "native programs ... ok (up to date)"
else
  make -s -C "$repo/native"
  say "native programs ... built"
fi

# 4. The Java build, when any source is newer than the CLI jar.
stale=""
if [[ ! -f "$jar" ]]; then
  stale="no jar yet"
else
  stale=$(find "$repo/pom.xml" "$repo"/*/pom.xml "$repo"/*/src -newer "$jar" -type f \
    -print -quit 2>/dev/null || true)
fi
if [[ -n "$stale" ]]; then
  say "java build ... building (mvn install -DskipTests; a first build downloads dependencies)"
  # The format check is for `cohort test` (mvn verify): a file not yet formatted should not
  # keep the tool from being built. Compiler warnings still fail, as in native/.
  (cd "$repo" && JAVA_HOME="$jdk17" mvn -B -q -Dstyle.color=never install -DskipTests \
    -Dspotless.check.skip=true) \
    || { echo "cohort setup: the Maven build failed; see the output above" >&2; exit 1; }
  say "java build ... built $jar"
else
  say "java build ... ok (up to date)"
fi

# 5. The CLI's class archive, when the jar is newer (a short command starts 3x faster).
bash "$repo/setup/cli-archive.sh"

# 6. `cohort` on PATH.
link=/usr/local/bin/cohort
if [[ "$(readlink -f "$link" 2>/dev/null)" != "$repo/cohort" ]]; then
  ln -sfn "$repo/cohort" "$link"
  say "PATH ... $link -> $repo/cohort"
else
  say "PATH ... ok ($link)"
fi
say "done; check the machine with: cohort doctor"
