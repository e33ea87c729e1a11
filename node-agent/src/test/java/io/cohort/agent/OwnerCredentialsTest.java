package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cohort.proto.v1.Owner;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The rule, on tasks made up for each case: the owner's credentials, or root for the init. */
class OwnerCredentialsTest {
  private static final String INIT = "/var/lib/cohort/agent/bin/cohort-init-0123456789abcdef";
  private static final Owner ALICE =
      Owner.newBuilder()
          .setUid(1001)
          .setGid(100)
          .addGroups(100)
          .addGroups(27)
          .setUser("alice")
          .build();
  private static final TaskCredentials.Creds OWNERS = TaskCredentials.Creds.of(ALICE);
  private static final TaskCredentials.Creds ROOT =
      new TaskCredentials.Creds(0, 0, 0, 0, 0, 0, 0, 0, List.of(), 0, -1L >>> 23, -1L >>> 23, 0);

  private static TaskCredentials task(int pid, int ppid, String exe, TaskCredentials.Creds c) {
    return new TaskCredentials(0, pid, pid, ppid, "p" + pid, exe, false, c);
  }

  private static List<String> violations(TaskCredentials... tasks) {
    return OwnerCredentials.violations(ALICE, INIT, List.of(tasks));
  }

  @Test
  void theOwnersTasksAndARootInitPass() {
    TaskCredentials.Creds reordered =
        new TaskCredentials.Creds(
            1001, 1001, 1001, 1001, 100, 100, 100, 100, List.of(27, 100, 27), 0, 0, 0, 0);
    assertEquals(
        List.of(),
        violations(
            task(1, 0, INIT, ROOT),
            task(2, 1, "/usr/bin/mpirun", OWNERS),
            task(3, 2, "/home/alice/ring", reordered)));
  }

  @Test
  void aForkOfPid1RunsTheInitAsRootOrHalfwayToTheOwner() {
    TaskCredentials.Creds halfway =
        new TaskCredentials.Creds(0, 0, 0, 0, 100, 100, 100, 100, List.of(100, 27), 0, 1, 1, 0);
    assertEquals(
        List.of(),
        violations(task(1, 0, INIT, ROOT), task(5, 1, INIT, ROOT), task(6, 1, INIT, halfway)));
  }

  @Test
  void rootIsRefusedAnywhereElse() {
    assertEquals(
        List.of(
            "process 1 (p1, /bin/bash) runs as uid 0 gid 0 groups none, capabilities "
                + "permitted=0x1ffffffffff effective=0x1ffffffffff inheritable=0x0 ambient=0x0",
            "process 7 (p7, "
                + INIT
                + ") runs as uid 0 gid 0 groups none, capabilities "
                + "permitted=0x1ffffffffff effective=0x1ffffffffff inheritable=0x0 ambient=0x0",
            "process 8 (p8) runs as uid 0 gid 0 groups none, capabilities "
                + "permitted=0x1ffffffffff effective=0x1ffffffffff inheritable=0x0 ambient=0x0"),
        violations(
            task(1, 0, "/bin/bash", ROOT), // pid 1, but not the init binary
            task(7, 2, INIT, ROOT), // the init binary, but not pid 1's child
            task(8, 1, "", ROOT))); // exe unknown
    // No init path known: nobody is exempt.
    assertEquals(1, OwnerCredentials.violations(ALICE, "", List.of(task(1, 0, "", ROOT))).size());
  }

  @Test
  void anyOtherIdGroupOrCapabilityIsRefused() {
    List<TaskCredentials.Creds> wrong =
        List.of(
            new TaskCredentials.Creds(
                1001, 0, 1001, 1001, 100, 100, 100, 100, List.of(100, 27), 0, 0, 0, 0),
            new TaskCredentials.Creds(
                1001, 1001, 1001, 0, 100, 100, 100, 100, List.of(100, 27), 0, 0, 0, 0),
            new TaskCredentials.Creds(
                1001, 1001, 1001, 1001, 100, 100, 0, 100, List.of(100, 27), 0, 0, 0, 0),
            new TaskCredentials.Creds(
                1001, 1001, 1001, 1001, 100, 100, 100, 100, List.of(100), 0, 0, 0, 0),
            new TaskCredentials.Creds(
                1001, 1001, 1001, 1001, 100, 100, 100, 100, List.of(100, 27, 0), 0, 0, 0, 0),
            new TaskCredentials.Creds(
                1001, 1001, 1001, 1001, 100, 100, 100, 100, List.of(100, 27), 1, 0, 0, 0),
            new TaskCredentials.Creds(
                1001, 1001, 1001, 1001, 100, 100, 100, 100, List.of(100, 27), 0, 1L << 13, 0, 0),
            new TaskCredentials.Creds(
                1001, 1001, 1001, 1001, 100, 100, 100, 100, List.of(100, 27), 0, 0, 1, 0),
            new TaskCredentials.Creds(
                1001, 1001, 1001, 1001, 100, 100, 100, 100, List.of(100, 27), 0, 0, 0, 1));
    for (TaskCredentials.Creds c : wrong) {
      assertEquals(1, violations(task(4, 2, "/usr/bin/x", c)).size(), "" + c);
    }
    assertEquals(
        List.of(
            "process 4 (p4, /usr/bin/x) runs as uid 1001/0/1001/1001 gid 100 groups 27,100, "
                + "no capabilities"),
        violations(task(4, 2, "/usr/bin/x", wrong.get(0))));
  }

  @Test
  void zombiesPassMissingCredentialsDoNotAndEachProcessIsNamedOnce() {
    TaskCredentials zombie = new TaskCredentials(0, 9, 9, 2, "defunct", "", true, null);
    TaskCredentials bare = new TaskCredentials(0, 4, 4, 2, "p4", "/usr/bin/x", false, null);
    TaskCredentials thread = new TaskCredentials(0, 4, 5, 2, "p4", "/usr/bin/x", false, ROOT);
    assertEquals(
        List.of(
            "process 4 (p4, /usr/bin/x) has no credentials recorded (CRIU would restore it "
                + "with its own, root's)"),
        violations(zombie, bare, thread));
  }

  @Test
  void rootsJobsAreNotChecked() {
    assertEquals(
        List.of(),
        OwnerCredentials.violations(
            Owner.getDefaultInstance(), INIT, List.of(task(3, 2, "/usr/bin/ping", ROOT))));
  }

  @Test
  void theMessageNamesAFewAndCountsTheRest() {
    List<String> five = List.of("a", "b", "c", "d", "e");
    assertEquals("a; b; c; and 2 more", OwnerCredentials.named(five));
    assertEquals(
        "; its owner alice (1001:100) runs as uid 1001 gid 100 groups 27,100, no capabilities",
        OwnerCredentials.ownerLine(ALICE));
  }
}
