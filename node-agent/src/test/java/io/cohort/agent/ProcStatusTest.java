package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/** {@code /proc/PID/status} as the agent reads it, and a process tree found from its root. */
class ProcStatusTest {
  /** A thread of a job in a vhost (pid 7 there), as kernel 6.x prints it. */
  private static final String STATUS =
      """
      Name:\tring: rank 1
      Umask:\t0022
      State:\tS (sleeping)
      Tgid:\t4242
      Ngid:\t0
      Pid:\t4243
      PPid:\t4200
      TracerPid:\t0
      Uid:\t1001\t1001\t1002\t4294967295
      Gid:\t100\t101\t102\t103
      FDSize:\t64
      Groups:\t27 100 1001\s
      NStgid:\t4242\t7
      NSpid:\t4243\t8
      CapInh:\t0000000000000000
      CapPrm:\t000001ffffffffff
      CapEff:\t0000000000000400
      CapBnd:\t000001ffffffffff
      CapAmb:\t8000000000000001
      Seccomp:\t0
      """;

  @Test
  void everyFieldTheChecksUseIsRead() {
    ProcStatus s = ProcStatus.parse(STATUS);
    assertEquals("ring: rank 1", s.name());
    assertEquals('S', s.state());
    assertEquals(4200, s.ppid());
    assertEquals(8, s.nsPid(), "the innermost namespace's pid");
    assertEquals(0, s.tracerPid());
    assertEquals(
        new TaskCredentials.Creds(
            1001,
            1001,
            1002,
            -1,
            100,
            101,
            102,
            103,
            List.of(27, 100, 1001),
            0,
            0x1ffffffffffL,
            0x400,
            0x8000000000000001L),
        s.creds());
    assertTrue(!s.dead());
  }

  @Test
  void aZombieWithNoGroupsIsRead() {
    ProcStatus s =
        ProcStatus.parse(
            "Name:\tsh\nState:\tZ (zombie)\nPPid:\t1\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n"
                + "Groups:\t\nNSpid:\t99\n");
    assertTrue(s.dead());
    assertEquals(List.of(), s.creds().groups());
    assertEquals(99, s.nsPid());
    assertTrue(s.creds().rootUids());
  }

  @Test
  void thisProcessReadsAsTheKernelSaysAndAGoneOneAsNull() {
    ProcStatus self = ProcStatus.read(Path.of("/proc/self/status"));
    // The tests run in the node's pid namespace: the innermost pid is this one.
    assertEquals(ProcessHandle.current().pid(), self.nsPid());
    assertNull(ProcStatus.read(Path.of("/proc/0/status")));
  }

  /** The agent's start-up warm-up of the owner checks runs on its own process without failing. */
  @Test
  void theOwnerChecksWarmUpOnThisProcess() throws Exception {
    RunningTasks.warmUp();
    ImageCredentials.warmUp();
  }

  @Test
  void aTreeIsItsRootAndEveryDescendantParentsFirst() throws Exception {
    Process sh =
        new ProcessBuilder("sh", "-c", "sleep 30 & (sleep 30 & wait) & wait")
            .redirectErrorStream(true)
            .start();
    try {
      List<Long> want;
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      do {
        Thread.sleep(20);
        want =
            Stream.concat(Stream.of(sh.pid()), sh.descendants().map(ProcessHandle::pid)).toList();
      } while (want.size() < 4 && System.nanoTime() < deadline);
      assertEquals(4, want.size(), "sh, a sleep, a subshell and its sleep: " + want);
      List<Long> tree = ProcTree.of(sh.pid());
      assertEquals(sh.pid(), tree.get(0));
      assertEquals(want.stream().sorted().toList(), tree.stream().sorted().toList());
      for (ProcessHandle p : sh.descendants().toList()) {
        long parent = p.parent().orElseThrow().pid();
        assertTrue(tree.indexOf(parent) < tree.indexOf(p.pid()), "parents first: " + tree);
      }
    } finally {
      sh.descendants().forEach(ProcessHandle::destroyForcibly);
      sh.destroyForcibly().waitFor();
    }
    assertEquals(List.of(), ProcTree.of(sh.pid()), "a root that is gone");
  }
}
