package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cohort.agent.CriuLogCause.Cause;
import io.cohort.agent.CriuLogCause.Kind;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CriuLogCauseTest {
  /** The first error lines of a real vhost restore log: noise that must never be the cause. */
  private static final List<String> NOISE =
      List.of(
          "Warn  (criu/config.c:1063): --network-lock will be ignored in restore command",
          "(00.059646) Error (criu/util.c:1534): rlimit: Can't setup RLIMIT_NOFILE for self:"
              + " Operation not permitted",
          "Error: ipv4: Address already assigned.",
          "Error: ipv6: address already assigned.",
          "Error (criu/util.c:642): execvp(\"iptables-restore\", ...) failed: No such file or"
              + " directory",
          "(00.102070)      1: Error (criu/util.c:1723): iptables-restore -V failed",
          "Error (criu/util.c:642): execvp(\"ip6tables-legacy-restore\", ...) failed: No such file"
              + " or directory",
          "(00.107491)      1: Error (criu/util.c:1723): ip6tables-legacy-restore -V failed",
          "(00.107600)      1: Restoring resources");

  /** Noise, then {@code lines}, then CRIU passing the failure upwards. */
  private static List<String> log(String... lines) {
    List<String> all = new ArrayList<>(NOISE);
    all.addAll(List.of(lines));
    all.add("(00.210000) Error (criu/cr-restore.c:1265): 1 exited, status=1");
    all.add("(00.210010) Error (criu/cr-restore.c:2331): Restoring FAILED.");
    return all;
  }

  private static Cause real(String name) throws IOException {
    try (InputStream in = CriuLogCauseTest.class.getResourceAsStream("criu-logs/" + name)) {
      return CriuLogCause.of(
          new String(in.readAllBytes(), StandardCharsets.UTF_8).lines().toList());
    }
  }

  @Test
  void aFileOfADifferentSizeIsNamedWithBothSizes() throws Exception {
    assertEquals(
        new Cause(
            Kind.FILE_CHANGED,
            "the job's file /tmp/criuerrors-real/f.txt changed since the checkpoint (22 bytes"
                + " now, 6 at the checkpoint); put it back as it was then, or restore a later"
                + " checkpoint"),
        real("restore-bad-size.log"));
    assertEquals(
        Kind.FILE_CHANGED,
        CriuLogCause.of(
                log(
                    "(00.200000)      7: Error (criu/files-reg.c:2175): File /work/job/dump.melt"
                        + " has bad size 854440 (expect 486825)"))
            .kind());
  }

  @Test
  void aMissingFileIsNamed() throws Exception {
    assertEquals(
        new Cause(
            Kind.FILE_MISSING,
            "the job's file /tmp/criuerrors-real/f.txt, open at the checkpoint, is missing; put"
                + " it back, or restore a later checkpoint"),
        real("restore-missing-file.log"));
  }

  @Test
  void anAddressInUseQuotesCriu() throws Exception {
    assertEquals(
        new Cause(
            Kind.ADDRESS_IN_USE,
            "an address the job had bound is in use by another process on this node (CRIU:"
                + " \"inet: Can't bind inet socket (id 26): Address already in use\"); stop that"
                + " process, or restore on another node"),
        real("restore-address-in-use.log"));
  }

  @Test
  void aPidInUseIsNamed() throws Exception {
    assertEquals(
        new Cause(
            Kind.PID_IN_USE,
            "process id 26008, which the job had at the checkpoint, is taken by another process"
                + " on this node; wait until that process ends and try again"),
        real("restore-pid-in-use.log"));
    assertEquals(
        "process id 12, which the job had at the checkpoint, is taken by another process on"
            + " this node; wait until that process ends and try again",
        CriuLogCause.of(
                log(
                    "(00.200000)     12: Error (criu/cr-restore.c:1539): Pid 31 do not match"
                        + " expected 12"))
            .line());
  }

  @Test
  void aMissingMountQuotesCriu() {
    assertEquals(
        new Cause(
            Kind.MOUNT,
            "a mount the job had is missing or cannot be made on this node (CRIU: \"mnt: Unable"
                + " to mount /data /tmp/.criu.mntns.x/13-0000000000/data (id=412): No such file or"
                + " directory\"); make sure it exists here as it did at the checkpoint"),
        CriuLogCause.of(
            log(
                "(00.150000)      1: Error (criu/mount.c:2236): mnt: Unable to mount /data"
                    + " /tmp/.criu.mntns.x/13-0000000000/data (id=412): No such file or"
                    + " directory")));
  }

  @Test
  void aFullDiskQuotesCriu() {
    assertEquals(
        new Cause(
            Kind.NO_SPACE,
            "a disk is full (CRIU: \"Can't write to /srv/cohort/images/pages-1.img: No space"
                + " left on device\"); free some space and try again"),
        CriuLogCause.of(
            log(
                "(00.300000) Error (criu/page-xfer.c:120): Can't write to"
                    + " /srv/cohort/images/pages-1.img: No space left on device")));
  }

  @Test
  void aRefusedPermissionQuotesCriu() {
    assertEquals(
        new Cause(
            Kind.PERMISSION,
            "CRIU was refused permission (CRIU: \"Can't open /proc/sys/kernel/ns_last_pid:"
                + " Permission denied\"); the agent must run as root, and a read-only file system"
                + " or a security module may be in the way"),
        CriuLogCause.of(
            log(
                "(00.100000) Error (criu/cr-restore.c:1074): Can't open"
                    + " /proc/sys/kernel/ns_last_pid: Permission denied")));
  }

  @Test
  void anUnknownErrorIsQuotedNotTheNoiseNorItsConsequences() {
    assertEquals(
        new Cause(Kind.OTHER, "CRIU said \"tty: Can't open /dev/pts/7: Input/output error\""),
        CriuLogCause.of(
            log(
                "(00.120000)      1: Error (criu/tty.c:900): tty: Can't open /dev/pts/7:"
                    + " Input/output error")));
    assertEquals(
        new Cause(Kind.OTHER, "CRIU said \"Dumping FAILED.\""),
        CriuLogCause.of(List.of("Error (criu/cr-dump.c:2099): Dumping FAILED.")));
  }

  @Test
  void onlyNoiseOrNoLogSaysSo(@TempDir Path dir) throws Exception {
    assertEquals(new Cause(Kind.NONE, "CRIU's log names no error"), CriuLogCause.of(NOISE));
    assertEquals(Kind.NONE, CriuLogCause.of(dir.resolve("absent.log")).kind());
    Path log = dir.resolve("restore.log");
    Files.write(log, log("(00.2) Error (criu/files-reg.c:2175): File a has bad size 2 (expect 1)"));
    assertEquals(Kind.FILE_CHANGED, CriuLogCause.of(log).kind());
  }
}
