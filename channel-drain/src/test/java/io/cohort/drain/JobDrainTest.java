package io.cohort.drain;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.util.concurrent.ImmediateEventExecutor;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * The deliver / record / hold decisions of one job, on an immediate executor (every call runs
 * inline), so each interleaving is exact.
 */
@ExtendWith(NoLeaks.class)
class JobDrainTest {

  private static final int DST1 = Ipv4.parse("198.19.0.1");
  private static final int DST2 = Ipv4.parse("198.19.0.2");

  private final ListSink sink = new ListSink();
  private final AtomicInteger markersSent = new AtomicInteger();
  private final List<ByteBuf> sent = new ArrayList<>();

  /** The job's network key on this node (the drain reads it as each frame is handled). */
  private volatile long key;

  private final JobDrain drain =
      new JobDrain("test:", "J", ImmediateEventExecutor.INSTANCE, sink, 4, () -> key);

  @AfterEach
  void everyBufferReleased() {
    for (ByteBuf b : sent) {
      assertEquals(0, b.refCnt(), "packet buffer released");
    }
  }

  private void remote(String peer, int dst, int seq) {
    remote(peer, 0, dst, seq);
  }

  private void remote(String peer, long frameKey, int dst, int seq) {
    ByteBuf b = ListSink.packet(0, seq);
    sent.add(b);
    drain.onRemotePacket(peer, new Frame.Packet("J", frameKey, dst, b));
  }

  private void local(int dst, int seq) {
    ByteBuf b = ListSink.packet(0, seq);
    sent.add(b);
    drain.onLocalPacket(dst, b);
  }

  private List<Integer> delivered() {
    return sink.of("J").stream().map(ListSink.Delivery::seq).toList();
  }

  private static List<Integer> seqs(Recording r) {
    return r.packets().stream().map(p -> ListSink.seqOf(p.data())).toList();
  }

  @Test
  void runningDeliversImmediately() {
    remote("a", DST1, 0);
    local(DST2, 1);
    assertEquals(List.of(0, 1), delivered());
    assertEquals(2, drain.stats().delivered());
  }

  @Test
  void packetsOfAnotherIncarnationAreDroppedAndCounted() {
    key = 0x2222;
    remote("a", 0x2222, DST1, 0);
    remote("a", 0x1111, DST1, 1); // a vhost of the earlier incarnation, on a node cut off
    remote("a", 0, DST1, 2); // a sender that has no key for the job
    local(DST2, 3); // local packets come from this node's own TUN: never stale
    assertEquals(List.of(0, 3), delivered());
    assertEquals(2, drain.stats().staleDropped());
    key = 0x3333; // the job restarted with a new key: the old one is stale now
    remote("a", 0x2222, DST1, 4);
    remote("a", 0x3333, DST1, 5);
    assertEquals(List.of(0, 3, 5), delivered());
    assertEquals(3, drain.stats().staleDropped());
  }

  @Test
  void whileFrozenAStalePacketIsNeitherRecordedNorHeldAndAStaleMarkerDoesNotCount()
      throws Exception {
    key = 0x2222;
    CompletableFuture<Recording> rec = drain.freeze(1, Set.of("a"), markersSent::incrementAndGet);
    remote("a", 0x1111, DST1, 0);
    remote("a", 0x2222, DST1, 1);
    drain.onMarker("a", 0x1111, 1);
    assertFalse(rec.isDone(), "a marker with another key is not a's marker");
    remote("a", 0x2222, DST1, 2); // still before a's marker: recorded
    remote("a", 0x1111, DST1, 3);
    drain.onMarker("a", 0x2222, 1);
    remote("a", 0x1111, DST1, 4);
    remote("a", 0x2222, DST1, 5); // after a's marker: held
    assertEquals(List.of(1, 2), seqs(rec.get()));
    assertEquals(1, drain.stats().held());
    assertEquals(4, drain.stats().staleDropped());
    drain.resume(1).get();
    assertEquals(List.of(1, 2, 5), delivered());
  }

  @Test
  void recordsBeforeEachPeersMarkerAndHoldsAfterIt() throws Exception {
    remote("a", DST1, 0);
    CompletableFuture<Recording> rec =
        drain.freeze(1, Set.of("a", "b"), markersSent::incrementAndGet);
    assertEquals(1, markersSent.get(), "markers are sent once frozen");
    remote("a", DST1, 1); // in flight from a: recorded
    remote("b", DST2, 2); // in flight from b: recorded
    drain.onMarker("a", 0, 1);
    remote("a", DST1, 3); // after a's marker: held
    remote("b", DST1, 4); // b's marker not yet: recorded
    local(DST2, 5); // from the local TUN while frozen: held
    assertFalse(rec.isDone(), "b's marker is missing");
    drain.onMarker("b", 0, 1);
    remote("b", DST2, 6); // after b's marker: held

    Recording r = rec.get();
    assertEquals(List.of(1, 2, 4), seqs(r));
    assertEquals(1, r.epoch());
    assertEquals(3, r.packetCount());
    Map<Integer, List<byte[]>> byDst = r.byDestination();
    assertEquals(List.of(1, 4), byDst.get(DST1).stream().map(ListSink::seqOf).toList());
    assertEquals(List.of(2), byDst.get(DST2).stream().map(ListSink::seqOf).toList());
    assertEquals(r.packets().stream().mapToLong(p -> p.data().length).sum(), r.byteCount());
    assertEquals(List.of(0), delivered(), "nothing delivered while frozen");
    JobStats s = drain.stats();
    assertTrue(s.frozen());
    assertEquals(3, s.recorded());
    assertEquals(3, s.held());

    drain.resume(1).get();
    assertEquals(List.of(0, 1, 2, 4, 3, 5, 6), delivered(), "recorded, then held, in order");
    remote("a", DST1, 7);
    assertEquals(7, delivered().get(delivered().size() - 1));
    assertFalse(drain.stats().frozen());
    assertEquals(0, drain.stats().held());
  }

  @Test
  void aMarkerThatArrivesBeforeTheLocalFreezeCounts() throws Exception {
    drain.onMarker("a", 0, 2); // a froze epoch 2 before us
    remote("a", DST1, 0); // still delivered: we are not frozen
    CompletableFuture<Recording> rec = drain.freeze(2, Set.of("a"), markersSent::incrementAndGet);
    assertTrue(rec.isDone(), "a's marker was already there");
    assertEquals(0, rec.get().packetCount());
    remote("a", DST1, 1); // after a's marker: held, not recorded
    assertEquals(1, drain.stats().held());
    drain.resume(2).get();
    assertEquals(List.of(0, 1), delivered());
  }

  @Test
  void staleAndDuplicateMarkersAreIgnored() throws Exception {
    CompletableFuture<Recording> rec = drain.freeze(1, Set.of("a"), markersSent::incrementAndGet);
    drain.onMarker("a", 0, 0); // stale
    assertFalse(rec.isDone());
    drain.onMarker("c", 0, 1); // not expected
    assertFalse(rec.isDone());
    drain.onMarker("a", 0, 1);
    assertTrue(rec.isDone());
    drain.onMarker("a", 0, 1); // duplicate
    drain.resume(1).get();
    drain.onMarker("a", 0, 1); // re-sent marker of a finished epoch: not an early one
    CompletableFuture<Recording> next = drain.freeze(2, Set.of("a"), markersSent::incrementAndGet);
    assertFalse(next.isDone(), "epoch 2 still waits for a's marker of epoch 2");
    drain.onMarker("a", 0, 2);
    assertTrue(next.isDone());
    drain.resume(2).get();
  }

  @Test
  void freezeAndResumeAreIdempotentAndCheckEpochs() throws Exception {
    CompletableFuture<Recording> first = drain.freeze(1, Set.of("a"), markersSent::incrementAndGet);
    CompletableFuture<Recording> again = drain.freeze(1, Set.of("a"), markersSent::incrementAndGet);
    assertEquals(1, markersSent.get(), "a repeated freeze sends no second marker");
    failsWith(
        IllegalStateException.class, drain.freeze(2, Set.of("a"), markersSent::incrementAndGet));
    failsWith(IllegalStateException.class, drain.resume(2));
    drain.onMarker("a", 0, 1);
    assertEquals(first.get().packets(), again.get().packets());
    drain.resume(1).get();
    drain.resume(1).get(); // again: no-op
    failsWith(
        IllegalArgumentException.class, drain.freeze(1, Set.of("a"), markersSent::incrementAndGet));
    failsWith(IllegalStateException.class, drain.resume(3));
  }

  @Test
  void resumeBeforeAllMarkersFailsTheRecordingButDeliversEverything() throws Exception {
    CompletableFuture<Recording> rec =
        drain.freeze(1, Set.of("a", "b"), markersSent::incrementAndGet);
    remote("a", DST1, 0);
    drain.onMarker("a", 0, 1);
    remote("a", DST1, 1);
    drain.resume(1).get(); // the coordinator aborted the epoch
    ExecutionException e = assertThrows(ExecutionException.class, rec::get);
    assertTrue(e.getCause().getMessage().contains("[b]"), e.getCause().getMessage());
    assertEquals(List.of(0, 1), delivered());
  }

  @Test
  void theHeldQueueIsBoundedDroppingTheOldest() throws Exception {
    drain.freeze(1, Set.of(), markersSent::incrementAndGet).get(); // no peers: complete at once
    for (int i = 0; i < 6; i++) {
      local(DST1, i);
    }
    assertEquals(4, drain.stats().held());
    assertEquals(2, drain.stats().heldDropped());
    drain.resume(1).get();
    assertEquals(List.of(2, 3, 4, 5), delivered());
  }

  @Test
  void injectDeliversInOrderEvenWhileFrozen() throws Exception {
    drain.freeze(1, Set.of("a"), markersSent::incrementAndGet);
    List<RecordedPacket> restored =
        List.of(
            new RecordedPacket(DST1, new byte[] {0, 0, 0, 7, 0, 0, 0, 0}),
            new RecordedPacket(DST2, new byte[] {0, 0, 0, 8, 0, 0, 0, 0}));
    drain.inject(restored).get();
    assertEquals(List.of(7, 8), delivered());
  }

  @Test
  void afterCloseEverythingIsReleasedAndTheRecordingFails() {
    CompletableFuture<Recording> rec = drain.freeze(1, Set.of("a"), markersSent::incrementAndGet);
    local(DST1, 0);
    drain.close();
    remote("a", DST1, 1);
    local(DST1, 2);
    assertTrue(rec.isCompletedExceptionally());
    assertEquals(List.of(), delivered());
  }

  @Test
  void tieBreakKeepsTheChannelDialedByTheLowerName() {
    // existing dialed by self ("a"), newer dialed by peer ("b"): a < b, keep existing
    assertFalse(PeerConnection.keepNewer("a", "b", true, false));
    // the same pair seen from b: existing dialed by peer a, newer dialed by self b
    assertFalse(PeerConnection.keepNewer("b", "a", false, true));
    // b's dial is pending when a's arrives: a's wins on both sides
    assertTrue(PeerConnection.keepNewer("b", "a", true, false));
    assertTrue(PeerConnection.keepNewer("a", "b", false, true));
    // same dialer twice (a redial): the newer wins
    assertTrue(PeerConnection.keepNewer("a", "b", true, true));
    assertTrue(PeerConnection.keepNewer("a", "b", false, false));
  }

  private static void failsWith(Class<? extends Throwable> type, CompletableFuture<?> f) {
    ExecutionException e = assertThrows(ExecutionException.class, f::get);
    assertInstanceOf(type, e.getCause());
  }
}
