package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.common.ProcessRunner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * {@link Munge} with this machine's real munged ({@code setup/munge.sh} installs and starts it): a
 * credential names its maker once and only once; a forged, expired, or replayed one is refused with
 * its reason, through libmunge in this process as the coordinator checks one.
 */
class MungeTest {
  private final Munge munge = Munge.system();

  @BeforeAll
  static void mungedRuns() {
    String failure = Munge.system().roundTrip();
    assertNull(
        failure,
        "these tests need MUNGE on this machine: as root, run `./cohort setup` (or "
            + "`setup/munge.sh`); it said: "
            + failure);
  }

  /** A credential made by this process's uid and gid, decodable by anyone, with {@code args}. */
  static String mungeWith(String... args) {
    List<String> cmd = new java.util.ArrayList<>(List.of("munge"));
    cmd.addAll(List.of(args));
    return ProcessRunner.check("munge", cmd.toArray(String[]::new));
  }

  @Test
  void aCredentialNamesItsMakerOnceAndOnlyOnce() throws Exception {
    String c = munge.credential("cohort once");
    Munge.Verified v = munge.verify(c);
    assertEquals(PeerIdentity.effectiveUid(), v.uid());
    assertEquals(effectiveGid(), v.gid());
    assertEquals("cohort once", v.payload());
    Munge.RefusedException again =
        assertThrows(Munge.RefusedException.class, () -> munge.verify(c));
    assertEquals(Munge.Refusal.REPLAYED, again.refusal);
    assertTrue(again.getMessage().contains("replayed"), again.getMessage());
  }

  @Test
  void aForgedCredentialIsRefused() {
    String valid = munge.credential("cohort forged");
    // One character of the body changed: the MAC no longer matches (or the header no longer
    // parses); munged refuses it either way.
    int at = valid.length() / 2;
    char flipped = valid.charAt(at) == 'A' ? 'B' : 'A';
    String forged = valid.substring(0, at) + flipped + valid.substring(at + 1);
    for (String c :
        List.of(
            forged,
            "MUNGE:AwQFAACfP2FhwCYmnQz1RrWtiEnK0hvMwT+9h1HEXMtMEwegtbuEDueg:",
            "garbage",
            "MUNGE:" + "A".repeat(Munge.MAX_CREDENTIAL) + ":",
            "MUNGE:abc:\nUID: 0")) {
      Munge.RefusedException e =
          assertThrows(Munge.RefusedException.class, () -> munge.verify(c), c);
      assertEquals(Munge.Refusal.INVALID, e.refusal, c + ": " + e.getMessage());
    }
  }

  @Test
  void anExpiredCredentialIsRefused() throws Exception {
    String c = mungeWith("--ttl", "1", "--string", "cohort late");
    Thread.sleep(2200); // past its time to live, as munged counts it (whole seconds)
    Munge.RefusedException e = assertThrows(Munge.RefusedException.class, () -> munge.verify(c));
    assertEquals(Munge.Refusal.EXPIRED, e.refusal, e.getMessage());
  }

  @Test
  void withoutMungedNothingIsMadeAndNothingPassesAsChecked() {
    Munge down = new Munge("/nonexistent/munge.socket.2");
    CohortException e = assertThrows(CohortException.class, () -> down.credential("cohort x"));
    assertEquals(CohortException.Kind.UNAUTHENTICATED, e.kind());
    assertTrue(e.getMessage().contains("munged must run on this machine"), e.getMessage());
    assertTrue(e.getMessage().contains("setup/munge.sh --start"), e.getMessage());
    String valid = munge.credential("cohort x");
    Munge.RefusedException r = assertThrows(Munge.RefusedException.class, () -> down.verify(valid));
    assertEquals(Munge.Refusal.NO_DAEMON, r.refusal, r.getMessage());
    assertNotNull(down.roundTrip());
    assertNull(munge.roundTrip());
  }

  private static int effectiveGid() throws Exception {
    for (String l : Files.readAllLines(Path.of("/proc/self/status"))) {
      if (l.startsWith("Gid:")) {
        return Integer.parseInt(l.substring(4).strip().split("\\s+")[1]);
      }
    }
    throw new AssertionError("no Gid: in /proc/self/status");
  }
}
