package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A restore holds its tasks at CRIU's pre-resume hook until the job is released, with the agent's
 * real action script and FIFOs against a fake CRIU that plays the restore's side.
 */
class RestoreHoldsTest {
  @TempDir Path home;
  private FakeCriu criu;
  private Path script;
  private ProcessIdentity self;

  @BeforeEach
  void setUp() throws Exception {
    criu = new FakeCriu(home);
    script = NativeInstalls.actionScript(home);
    self = ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow();
  }

  private Criu.Restored restore(RestoreHolds holds, String vhost) throws Exception {
    Path images = Files.createDirectories(home.resolve("img-" + vhost));
    return holds.restore(vhost, images, home.resolve("work-" + vhost), List.of());
  }

  @Test
  void aRestoredVhostRunsOnlyWhenReleased() throws Exception {
    RestoreHolds holds = new RestoreHolds(criu, script, self, Duration.ofSeconds(30));
    Criu.Restored r = restore(holds, "1-0");
    assertTrue(r.pid() > 0, "the pid CRIU wrote");
    Thread.sleep(300); // a hold that let go by itself would show by now
    assertEquals("", criu.restoreOutcome(), "held at pre-resume until the job is released");
    assertTrue(holds.isHeld("1-0"));

    assertEquals(1, holds.release(List.of("1-0", "1-1")), "only 1-0 was held here");
    assertEquals("resumed", criu.restoreOutcome());
    assertFalse(holds.isHeld("1-0"));
    assertEquals(0, holds.release(List.of("1-0")), "a second release finds nothing");
  }

  @Test
  void aHoldNobodyReleasesEndsWithItsLease() throws Exception {
    RestoreHolds holds = new RestoreHolds(criu, script, self, Duration.ofMillis(800));
    restore(holds, "1-0");
    for (int i = 0; i < 500 && criu.restoreOutcome().isEmpty(); i++) {
      Thread.sleep(10);
    }
    assertEquals("resumed", criu.restoreOutcome(), "the lease let the tasks run");
    assertFalse(holds.isHeld("1-0"));
  }

  @Test
  void aFailedRestoreSaysWhyAndHoldsNothing() throws Exception {
    Files.writeString(criu.control.resolve("fail-restore"), "");
    RestoreHolds holds = new RestoreHolds(criu, script, self, Duration.ofSeconds(30));
    CriuException e = assertThrows(CriuException.class, () -> restore(holds, "1-0"));
    assertTrue(e.getMessage().contains("Restoring FAILED"), e.getMessage());
    assertFalse(holds.isHeld("1-0"));
  }
}
