package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Supplementary groups of a socket's peer: only from a process that is still the same user. */
class PeerIdentityTest {
  @TempDir Path proc;

  private void status(int pid, String uid, String gid, String groups) throws Exception {
    Path d = Files.createDirectories(proc.resolve(Integer.toString(pid)));
    Files.writeString(
        d.resolve("status"),
        "Name:\tcohort\nUid:\t" + uid + "\nGid:\t" + gid + "\nGroups:\t" + groups + "\n");
  }

  @Test
  void groupsComeFromTheProcessWhenItStillHasTheCallersIds() throws Exception {
    status(100, "1001\t1001\t1001\t1001", "1001\t1001\t1001\t1001", "27 1001 ");
    assertEquals(List.of(27, 1001), new PeerIdentity(proc).groups(100, 1001, 1001));
  }

  @Test
  void aProcessThatIsGoneOrNowSomeoneElseGivesNoGroups() throws Exception {
    // Effective uid differs (e.g. the pid was reused, or the process changed user).
    status(101, "1001\t0\t0\t0", "1001\t1001\t1001\t1001", "0 27");
    status(102, "1001\t1001\t1001\t1001", "1001\t0\t0\t0", "0 27");
    PeerIdentity ids = new PeerIdentity(proc);
    assertEquals(List.of(), ids.groups(101, 1001, 1001));
    assertEquals(List.of(), ids.groups(102, 1001, 1001));
    assertEquals(List.of(), ids.groups(103, 1001, 1001));
  }

  @Test
  void rootIsNamedWithoutTheUserDatabase() {
    assertEquals("root", new PeerIdentity(proc).name(0));
  }
}
