package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import org.junit.jupiter.api.Test;

/**
 * The overlay's form of a job's network key. Whether a frame with another key is delivered is
 * channel-drain's ({@code JobDrainTest}, {@code OverlayTest}); here: each incarnation's key maps to
 * its own overlay key, and no key stays no key.
 */
class VhostOverlayTest {

  @Test
  void anEmptyNetworkKeyIsNoKey() {
    assertEquals(0, VhostOverlay.overlayKey(""));
  }

  @Test
  void eachIncarnationsKeyMapsToItsOwnOverlayKey() {
    long first = VhostOverlay.overlayKey("3f6c1a9e0b7d4c21");
    assertEquals(first, VhostOverlay.overlayKey("3f6c1a9e0b7d4c21"), "the same on every node");
    assertNotEquals(0, first);
    assertNotEquals(first, VhostOverlay.overlayKey("3f6c1a9e0b7d4c22"));
  }
}
