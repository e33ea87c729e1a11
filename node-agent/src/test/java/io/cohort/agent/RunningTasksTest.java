package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.Owner;
import io.cohort.proto.v1.VhostRecord;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The checkpoint's check of a running vhost of "nobody": a process that runs a set-uid, set-gid or
 * file-capability program (a copy of sleep, made so by the test) is refused with a message naming
 * it, and nothing is changed; the owner's own processes and root's jobs pass.
 */
class RunningTasksTest {
  private static final Owner NOBODY = RealVhost.NOBODY_OWNER;

  private static Path work;

  @BeforeAll
  static void setUp() throws Exception {
    RealVhost.assumeAvailable();
    work = RealVhost.workDir("running-creds");
  }

  @AfterAll
  static void clean() throws IOException {
    RealVhost.deleteTree(work);
  }

  @Test
  void theOwnersThreadsPass() throws Exception {
    Path dir = Files.createDirectories(work.resolve("plain"));
    Path threads = RealVhost.threadsProgram(dir);
    try (RealVhost v =
        RealVhost.start(
            dir, RealVhost.NOBODY, RealVhost.NOBODY, "exec " + RealVhost.quoted(threads))) {
      List<TaskCredentials> tasks = RunningTasks.read(v.pid);
      assertEquals(1, tasks.get(0).pid());
      assertEquals(RealVhost.INIT.toString(), tasks.get(0).exe());
      List<TaskCredentials> job = tasks.stream().filter(t -> t.pid() == 2).toList();
      assertEquals(3, job.size(), "every thread: " + tasks);
      for (TaskCredentials t : job) {
        assertEquals(TaskCredentials.Creds.of(NOBODY), t.creds(), "" + t);
        assertEquals(1, t.ppid());
      }
      RunningTasks.check(record(v, NOBODY));
    }
  }

  @Test
  void aSetUidProgramIsRefusedAndKeepsRunning() throws Exception {
    Path dir = Files.createDirectories(work.resolve("setuid"));
    Path prog = copyOfSleep(dir, "suid-sleep", "rwsr-xr-x");
    try (RealVhost v = startRunning(dir, prog, RealVhost.NOBODY)) {
      long host = hostPid(v, prog);
      CohortException e =
          assertThrows(CohortException.class, () -> RunningTasks.check(record(v, NOBODY)));
      assertEquals(CohortException.Kind.FAILED_PRECONDITION, e.kind());
      String m = e.getMessage();
      String named = "process " + host + " (suid-sleep, " + prog + "; pid 3 in its vhost)";
      assertTrue(m.startsWith("job 9: " + named + " runs a set-uid program"), m);
      // Where the file system honours set-uid (not nosuid), the process is root too.
      TaskCredentials t =
          RunningTasks.read(v.pid).stream().filter(x -> x.hostPid() == host).findFirst().get();
      if (t.creds().euid() == 0) {
        assertTrue(m.contains("; " + named + " runs as uid 65534/0/0/0 gid 65534"), m);
        assertTrue(m.contains("; its owner nobody (65534:65534) runs as uid 65534 gid 65534"), m);
      }
      assertTrue(m.contains("Cohort does not checkpoint set-id programs"), m);
      assertTrue(ProcessHandle.of(host).map(ProcessHandle::isAlive).orElse(false));
      // Root's jobs may run anything.
      RunningTasks.check(record(v, Owner.getDefaultInstance()));
    }
  }

  @Test
  void setGidAndFileCapabilityProgramsAreRefused() throws Exception {
    Path dir = Files.createDirectories(work.resolve("setgid"));
    Path sgid = copyOfSleep(dir, "sgid-sleep", "rwxr-sr-x");
    try (RealVhost v = startRunning(dir, sgid, RealVhost.NOBODY)) {
      assertEquals("a set-gid program", RunningTasks.setIdProgram(hostPid(v, sgid)));
      assertTrue(
          assertThrows(CohortException.class, () -> RunningTasks.check(record(v, NOBODY)))
              .getMessage()
              .contains("(sgid-sleep, " + sgid + "; pid 3 in its vhost) runs a set-gid program"));
    }
    // The set-gid bit without group execute is mandatory locking, not set-gid.
    Path locking = copyOfSleep(dir, "locking-sleep", "rwxr-Sr-x");
    Process p = new ProcessBuilder(locking.toString(), "1000").start();
    try {
      awaitExe(p.toHandle(), locking);
      assertNull(RunningTasks.setIdProgram(p.pid()));
    } finally {
      p.destroyForcibly().waitFor();
    }
    assumeTrue(Files.isExecutable(Path.of("/usr/sbin/setcap")), "needs setcap (libcap2-bin)");
    Path caps = copyOfSleep(dir, "caps-sleep", "rwxr-xr-x");
    RealVhost.run(List.of("/usr/sbin/setcap", "cap_net_raw+p", caps.toString()));
    try (RealVhost v = startRunning(dir, caps, RealVhost.NOBODY)) {
      String m =
          assertThrows(CohortException.class, () -> RunningTasks.check(record(v, NOBODY)))
              .getMessage();
      assertTrue(m.contains("runs a program with file capabilities"), m);
      assertTrue(m.contains("capabilities permitted=0x2000 effective=0x0"), m);
    }
  }

  // ------------------------------------------------------------------ helpers

  private static VhostRecord record(RealVhost v, Owner owner) {
    return VhostRecord.newBuilder()
        .setJobId("9")
        .setVhostId("9-0")
        .setPid(v.pid)
        .setInitPath(RealVhost.INIT.toString())
        .setOwner(owner)
        .build();
  }

  /** A copy of sleep with {@code mode} (ls -l's letters), root's. */
  private static Path copyOfSleep(Path dir, String name, String mode)
      throws IOException, InterruptedException {
    Path p = dir.resolve(name);
    Files.copy(Path.of("/usr/bin/sleep"), p, StandardCopyOption.REPLACE_EXISTING);
    RealVhost.run(List.of("chmod", symbolic(mode), p.toString()));
    return p;
  }

  /** rwsr-xr-x -> u=rwxs,g=rx,o=rx: chmod's symbolic form (s: execute and set-id; S: set-id). */
  private static String symbolic(String mode) {
    String[] who = {"u", "g", "o"};
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < 3; i++) {
      String part = mode.substring(3 * i, 3 * i + 3);
      char x = part.charAt(2);
      s.append(i == 0 ? "" : ",").append(who[i]).append("=");
      s.append(part.charAt(0) == 'r' ? "r" : "").append(part.charAt(1) == 'w' ? "w" : "");
      s.append(x == 'x' || x == 's' ? "x" : "").append(x == 's' || x == 'S' ? "s" : "");
    }
    return s.toString();
  }

  /** A vhost whose main process (pid 2) starts {@code prog} (pid 3) and waits. */
  private static RealVhost startRunning(Path dir, Path prog, int uid) throws Exception {
    RealVhost v =
        RealVhost.start(
            dir, uid, uid, RealVhost.quoted(prog) + " 100000 & echo ready; exec sleep 100000");
    try {
      hostPid(v, prog);
      return v;
    } catch (RuntimeException e) {
      v.close();
      throw e;
    }
  }

  /** The host pid of the vhost's process that runs {@code prog}, once it does. */
  private static long hostPid(RealVhost v, Path prog) throws InterruptedException {
    ProcessHandle init = ProcessHandle.of(v.pid).orElseThrow();
    for (int i = 0; i < 500; i++) {
      for (ProcessHandle h : init.descendants().toList()) {
        if (exe(h).equals(prog.toString())) {
          return h.pid();
        }
      }
      Thread.sleep(20);
    }
    throw new IllegalStateException(prog + " did not start in the vhost");
  }

  private static void awaitExe(ProcessHandle h, Path prog) throws InterruptedException {
    for (int i = 0; i < 500 && !exe(h).equals(prog.toString()); i++) {
      Thread.sleep(20);
    }
  }

  private static String exe(ProcessHandle h) {
    try {
      return Files.readSymbolicLink(Path.of("/proc", Long.toString(h.pid()), "exe")).toString();
    } catch (IOException gone) {
      return "";
    }
  }
}
