package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.ImageCopy;
import io.cohort.proto.v1.ImageCopyState;
import io.cohort.proto.v1.ImagePolicy;
import io.cohort.proto.v1.Protection;
import io.cohort.proto.v1.VhostPlacement;
import io.grpc.inprocess.InProcessChannelBuilder;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.util.List;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The coordinator's rules for losing a node, with nodes known from heartbeats and a clock the test
 * moves: who is a partner, what protection a checkpoint has, where a restart takes an image from,
 * and declaring nodes dead. (The copies and restarts themselves run end to end in NodeLossIT.)
 */
class NodeLossTest {
  @TempDir Path dir;

  private final MovableClock clock = new MovableClock();
  private AgentDirectory agents;
  private Catalog catalog;

  /** A clock the test moves forward. */
  static final class MovableClock extends Clock {
    private long millis = 1_000_000;

    void advance(Duration d) {
      millis += d.toMillis();
    }

    @Override
    public long millis() {
      return millis;
    }

    @Override
    public Instant instant() {
      return Instant.ofEpochMilli(millis);
    }

    @Override
    public java.time.ZoneId getZone() {
      return ZoneOffset.UTC;
    }

    @Override
    public Clock withZone(java.time.ZoneId zone) {
      return this;
    }
  }

  @BeforeEach
  void setUp() {
    catalog = new Catalog(dir, TestKey.KEY);
    agents =
        new AgentDirectory(
            clock,
            Duration.ofSeconds(3),
            address -> InProcessChannelBuilder.forName(address).build(),
            (node, ch) -> new AgentClient(node, ch, Duration.ofSeconds(1), Duration.ofSeconds(1)));
    for (String n : List.of("n1", "n2", "n3", "n4")) {
      beat(n, "store-" + n);
    }
  }

  @AfterEach
  void tearDown() {
    agents.close();
  }

  private void beat(String node, String store) {
    agents.heartbeat(
        HeartbeatRequest.newBuilder()
            .setNode(node)
            .setAddress("nodeloss-" + node)
            .setImageStoreId(store)
            .build());
  }

  /** Every node but {@code down} is heard again after the liveness time: {@code down} is down. */
  private void silence(String... down) {
    clock.advance(Duration.ofSeconds(4));
    for (String n : List.of("n1", "n2", "n3", "n4")) {
      if (!List.of(down).contains(n)) {
        beat(n, "store-" + n);
      }
    }
  }

  private static CheckpointInfo ckpt(String... nodes) {
    CheckpointInfo.Builder b = CheckpointInfo.newBuilder().setCheckpointId("7.1").setJobId("7");
    for (int i = 0; i < nodes.length; i++) {
      b.addVhosts(VhostPlacement.newBuilder().setVhostId("7-" + i).setNode(nodes[i]));
      b.putImageStore("7-" + i, "store-" + nodes[i]);
    }
    return b.build();
  }

  private PartnerCopies copies() {
    return new PartnerCopies(catalog, agents, NodeLossConfig.defaults(), clock);
  }

  private static CheckpointInfo finish(CheckpointInfo c, String vhost, ImageCopyState state) {
    CheckpointInfo.Builder b = c.toBuilder().clearCopies();
    for (ImageCopy k : c.getCopiesList()) {
      b.addCopies(k.getVhostId().equals(vhost) ? k.toBuilder().setState(state).build() : k);
    }
    return b.build();
  }

  @Test
  void eachImageGoesToTheNextUsableNodeWithAnotherStore() {
    silence("n2"); // n2 down: n1's partner is n3, and n4's wraps round to n1
    try (PartnerCopies copies = copies()) {
      CheckpointInfo planned = copies.plan(ckpt("n1", "n4"), ImagePolicy.IMAGE_POLICY_PARTNER);
      assertEquals(2, planned.getCopiesCount());
      assertEquals("n3", planned.getCopies(0).getNode());
      assertEquals("n1", planned.getCopies(1).getNode());
      assertEquals(Protection.PROTECTION_PARTNER_COPYING, planned.getProtection());
      assertEquals(planned, copies.plan(planned, ImagePolicy.IMAGE_POLICY_PARTNER), "planned once");

      CheckpointInfo one = finish(planned, "7-0", ImageCopyState.IMAGE_COPY_STATE_COMPLETE);
      assertEquals(
          Protection.PROTECTION_PARTNER_COPYING,
          copies.withProtection(one, ImagePolicy.IMAGE_POLICY_PARTNER).getProtection());
      CheckpointInfo both = finish(one, "7-1", ImageCopyState.IMAGE_COPY_STATE_COMPLETE);
      assertEquals(
          Protection.PROTECTION_PARTNER_COMPLETE,
          copies.withProtection(both, ImagePolicy.IMAGE_POLICY_PARTNER).getProtection());
    }
  }

  @Test
  void aFailedCopyTriesAnotherNodeAndWithNoneLeftTheCheckpointIsLocalOnly() {
    silence("n3", "n4");
    try (PartnerCopies copies = copies()) {
      CheckpointInfo planned = copies.plan(ckpt("n1"), ImagePolicy.IMAGE_POLICY_PARTNER);
      assertEquals("n2", planned.getCopies(0).getNode());
      CheckpointInfo failed =
          planned.toBuilder()
              .setCopies(
                  0,
                  planned.getCopies(0).toBuilder()
                      .setState(ImageCopyState.IMAGE_COPY_STATE_FAILED)
                      .setError("disk full"))
              .build();
      CheckpointInfo again = copies.plan(failed, ImagePolicy.IMAGE_POLICY_PARTNER);
      assertEquals(Protection.PROTECTION_LOCAL_ONLY, again.getProtection());
      assertTrue(again.getProtectionDetail().contains("copy to n2 failed (disk full)"));
      assertEquals(1, again.getCopiesCount(), "no other node up to try");

      CheckpointInfo none = copies.plan(ckpt("n1"), ImagePolicy.IMAGE_POLICY_NONE);
      assertEquals(0, none.getCopiesCount());
      assertEquals(Protection.PROTECTION_LOCAL_ONLY, none.getProtection());
      assertEquals("image policy none", none.getProtectionDetail());
    }
  }

  @Test
  void nodesSharingAStoreNeedNoPartner() {
    beat("n1", "shared");
    beat("n2", "shared");
    try (PartnerCopies copies = copies()) {
      CheckpointInfo c = ckpt("n1").toBuilder().putImageStore("7-0", "shared").build();
      CheckpointInfo planned = copies.plan(c, ImagePolicy.IMAGE_POLICY_PARTNER);
      assertEquals(0, planned.getCopiesCount());
      assertEquals(Protection.PROTECTION_SHARED_STORE, planned.getProtection());
    }
  }

  @Test
  void aRestartTakesEachImageFromWhereAnIntactCopyIs() {
    CheckpointInfo c =
        ckpt("n1", "n2").toBuilder()
            .addCopies(
                ImageCopy.newBuilder()
                    .setVhostId("7-1")
                    .setNode("n3")
                    .setImageStore("store-n3")
                    .setState(ImageCopyState.IMAGE_COPY_STATE_COMPLETE)
                    .setReason("partner"))
            .addCopies(
                ImageCopy.newBuilder()
                    .setVhostId("7-0")
                    .setNode("n2")
                    .setImageStore("store-n2")
                    .setState(ImageCopyState.IMAGE_COPY_STATE_COPYING)
                    .setReason("partner"))
            .build();
    ImageHolders holders = new ImageHolders(agents);
    assertTrue(holders.source(c, "7-1", "n3").orElseThrow().inPlace(), "the partner restores it");
    assertEquals("n2", holders.source(c, "7-1", "n4").orElseThrow().holder().node());

    silence("n2");
    ImageHolders.Source from = holders.source(c, "7-1", "n4").orElseThrow();
    assertEquals("n3", from.holder().node(), "the original's node is down: the partner's copy");
    assertFalse(from.inPlace());
    assertTrue(holders.unavailable(c).isEmpty());

    silence("n1"); // n1 down, its copy to n2 never finished: 7-0 is nowhere to be had
    String why = holders.unavailable(c).orElseThrow();
    assertTrue(why.contains("vhost 7-0 is only on n1") && why.contains("had not finished"), why);
    assertTrue(holders.source(c, "7-0", "n4").isEmpty());
  }

  @Test
  void onlyANodeThatIsDownCanBeDeclaredDeadAndTheDeclarationIsKept() {
    NodeFencing fencing = new NodeFencing(catalog, agents, clock, null);
    CohortException up = assertThrows(CohortException.class, () -> fencing.fence("n2", "test"));
    assertTrue(up.getMessage().contains("node n2 is up"), up.getMessage());
    assertThrows(CohortException.class, () -> fencing.fence("n9", "test"));

    silence("n2");
    CohortException down = assertThrows(CohortException.class, () -> agents.agent("n2"));
    assertTrue(down.getMessage().contains("`cohort nodes fence n2`"), down.getMessage());
    fencing.fence("n2", "test");
    assertTrue(agents.isDead("n2"));
    CohortException dead = assertThrows(CohortException.class, () -> agents.agent("n2"));
    assertTrue(dead.getMessage().contains("declared dead"), dead.getMessage());

    AgentDirectory fresh =
        new AgentDirectory(
            clock,
            Duration.ofSeconds(3),
            address -> InProcessChannelBuilder.forName(address).build(),
            (node, ch) -> new AgentClient(node, ch, Duration.ofSeconds(1), Duration.ofSeconds(1)));
    new NodeFencing(catalog, fresh, clock, null);
    assertTrue(fresh.isDead("n2"), "a restarted coordinator knows n2 is dead");
    fresh.close();

    // Heard again: it rejoins, still refusing work until its stale vhosts are ended.
    beat("n2", "store-n2");
    assertTrue(agents.startRejoin("n2"));
    assertFalse(agents.isUsable("n2"));
    fencing.forget("n2");
    assertTrue(agents.isUsable("n2"));
    assertTrue(catalog.deadNodes().isEmpty());
  }

  @Test
  void aNodeDownLongerThanTheDeadAfterTimeIsDeclaredDead() {
    NodeFencing fencing = new NodeFencing(catalog, agents, clock, Duration.ofSeconds(10));
    silence("n3");
    fencing.fenceOverdue();
    assertFalse(agents.isDead("n3"), "down 4 s: not yet");
    clock.advance(Duration.ofSeconds(8));
    fencing.fenceOverdue();
    assertTrue(agents.isDead("n3"));
    assertTrue(catalog.deadNodes().get(0).getReason().contains("down for more than 10 s"));
  }
}
