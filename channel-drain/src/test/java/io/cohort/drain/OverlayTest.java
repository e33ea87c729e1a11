package io.cohort.drain;

import static io.cohort.drain.ListSink.packet;
import static io.cohort.drain.ListSink.range;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.channel.Channel;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.LockSupport;
import java.util.function.IntConsumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

/** Real overlays on 127.0.0.1 (ephemeral ports), talking TCP to each other. */
@ExtendWith(NoLeaks.class)
class OverlayTest {

  private static final Duration T = Duration.ofSeconds(10);
  private static final String J = "job-J";
  private static final String K = "job-K";
  private static final int A1 = Ipv4.parse("198.19.1.1");
  private static final int B1 = Ipv4.parse("198.19.2.1");
  private static final int B2 = Ipv4.parse("198.19.2.2");
  private static final int C1 = Ipv4.parse("198.19.3.1");
  private static final int TAG_A = 1;
  private static final int TAG_B = 2;
  private static final int TAG_C = 3;

  private final Routes routes = new Routes();
  private final Map<String, Overlay> overlays = new LinkedHashMap<>();
  private final Map<String, ListSink> sinks = new LinkedHashMap<>();
  private final List<Overlay> toClose = new ArrayList<>();
  private final List<Thread> threads = new ArrayList<>();
  private final AtomicBoolean stop = new AtomicBoolean();
  private int ioThreads = OverlayConfig.defaults("x", new InetSocketAddress(0)).ioThreads();

  /** Starts an overlay named {@code name} and introduces it to (and from) the running ones. */
  private Overlay start(String name, int port) {
    OverlayConfig config =
        OverlayConfig.defaults(name, new InetSocketAddress("127.0.0.1", port))
            .withBackoff(Duration.ofMillis(20), Duration.ofMillis(200))
            .withQueueLimits(100_000, 100_000)
            .withIoThreads(ioThreads);
    ListSink sink = new ListSink();
    Overlay o = Overlay.start(config, routes, sink);
    toClose.add(o);
    for (Overlay other : overlays.values()) {
      if (!other.nodeName().equals(name)) {
        o.addPeer(other.nodeName(), other.localAddress());
        other.addPeer(name, o.localAddress());
      }
    }
    overlays.put(name, o);
    sinks.put(name, sink);
    return o;
  }

  private Overlay start(String name) {
    return start(name, 0);
  }

  @AfterEach
  void closeAll() throws InterruptedException {
    stop.set(true);
    for (Thread t : threads) {
      t.join(T.toMillis());
    }
    Collections.reverse(toClose);
    toClose.forEach(Overlay::close);
    toClose.clear();
    overlays.clear();
    sinks.clear();
  }

  /**
   * Starts a thread that calls {@code step} with 0, 1, 2, ... until stopped; returns the count
   * sent.
   */
  private AtomicInteger sender(String name, AtomicBoolean until, IntConsumer step) {
    AtomicInteger sent = new AtomicInteger();
    Thread t =
        new Thread(
            () -> {
              while (!until.get() && !stop.get()) {
                step.accept(sent.get());
                sent.incrementAndGet();
                LockSupport.parkNanos(
                    200_000); // a few thousand per second: the test is about order, not speed
              }
            },
            name);
    t.setDaemon(true);
    threads.add(t);
    t.start();
    return sent;
  }

  private static List<Integer> seqs(Recording r) {
    return r.packets().stream().map(p -> ListSink.seqOf(p.data())).toList();
  }

  /**
   * The kernel path: the job's packets and markers come to the overlay another way than its
   * connections (diverted from the kernel); the cut treats them as if they had come on them, and
   * the markers leave by the way the caller gives.
   */
  @Test
  void packetsAndMarkersThatCameAnotherWayAreCutTheSame() throws Exception {
    Overlay b = start("b");
    routes.put(B1, "b");
    List<String> markersTo = new java.util.concurrent.CopyOnWriteArrayList<>();
    b.arrived("a", J, B1, packet(TAG_A, 0)); // before the freeze: delivered
    java.util.concurrent.CompletableFuture<Recording> rec =
        b.freeze(J, 1, java.util.Set.of("a", "c", "b"), markersTo::add);
    b.applied(J).get();
    assertEquals(List.of("a", "c"), markersTo, "a marker to every other node, its own way");
    b.arrived("a", J, B1, packet(TAG_A, 1)); // in flight: recorded
    b.arrived("c", J, B1, packet(TAG_C, 1));
    b.markerArrived("a", J, b.key(J), 1);
    b.arrived("a", J, B1, packet(TAG_A, 2)); // after a's marker: held
    b.arrived("c", J, B1, packet(TAG_C, 2)); // c's marker not yet: recorded
    b.markerArrived("c", J, b.key(J), 1);
    Recording r = rec.get(T.toMillis(), java.util.concurrent.TimeUnit.MILLISECONDS);
    assertEquals(List.of(1, 1, 2), seqs(r));
    assertEquals(1, sinks.get("b").count(J), "nothing delivered while frozen");
    b.resume(J, 1).get();
    sinks.get("b").awaitCount(J, 5, T);
    assertEquals(List.of(0, 1, 2), sinks.get("b").seqs(J, B1, TAG_A), "recorded, then held");
    assertEquals(List.of(1, 2), sinks.get("b").seqs(J, B1, TAG_C));
  }

  @Test
  void routesPacketsToTheOwningNodeInOrder() throws Exception {
    Overlay a = start("a");
    Overlay b = start("b");
    Overlay c = start("c");
    routes.put(A1, "a");
    routes.put(B1, "b");
    routes.put(B2, "b");
    routes.put(C1, "c");

    for (int i = 0; i < 500; i++) {
      a.send(J, B1, packet(TAG_A, i));
      a.send(J, B2, packet(TAG_A, i));
      a.send(J, C1, packet(TAG_A, i));
      b.send(J, C1, packet(TAG_B, i));
      if (i < 50) {
        a.send(J, A1, packet(TAG_A, i)); // local: straight to a's sink
      }
    }
    sinks.get("b").awaitCount(J, 1000, T);
    sinks.get("c").awaitCount(J, 1000, T);
    sinks.get("a").awaitCount(J, 50, T);

    assertEquals(range(0, 500), sinks.get("b").seqs(J, B1, TAG_A));
    assertEquals(range(0, 500), sinks.get("b").seqs(J, B2, TAG_A));
    assertEquals(range(0, 500), sinks.get("c").seqs(J, C1, TAG_A));
    assertEquals(range(0, 500), sinks.get("c").seqs(J, C1, TAG_B));
    assertEquals(range(0, 50), sinks.get("a").seqs(J, A1, TAG_A));
    assertEquals(1000, sinks.get("b").count(J), "nothing else reached b");
    assertEquals(1000, sinks.get("c").count(J), "nothing else reached c");
    assertEquals(50, sinks.get("a").count(J), "nothing else reached a");

    ByteBuf lost = packet(TAG_A, 0);
    a.send(J, Ipv4.parse("198.19.9.9"), lost);
    assertEquals(0, lost.refCnt(), "an unroutable packet is released");
    assertEquals(1, a.droppedPackets());

    assertTrue(a.isConnected("b") && a.isConnected("c") && b.isConnected("c"));
    Await.until(
        "one connection per pair",
        T,
        () -> a.openConnections() == 2 && b.openConnections() == 2 && c.openConnections() == 2);
  }

  /**
   * Both nodes dial at the same moment: their accept loops are held until both dials are open, so
   * each side sees the other's HELLO while its own dial is pending. The rule keeps the channel
   * dialed by the lower name ("a") on both sides, and nothing sent is lost.
   */
  @Test
  void crossingDialsKeepOneConnectionDialedByTheLowerName() throws Exception {
    Overlay a = start("a");
    Overlay b = start("b");
    routes.put(A1, "a");
    routes.put(B1, "b");
    CountDownLatch gate = new CountDownLatch(1);
    for (Overlay o : List.of(a, b)) {
      o.acceptGroup()
          .execute(
              () -> {
                try {
                  gate.await(T.toMillis(), TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                  Thread.currentThread().interrupt();
                }
              });
    }
    try {
      a.peer("b").connectNow();
      b.peer("a").connectNow();
      Await.until("both dials open", T, () -> a.openConnections() == 1 && b.openConnections() == 1);
      for (int i = 0; i < 200; i++) {
        a.send(J, B1, packet(TAG_A, i));
        b.send(J, A1, packet(TAG_B, i));
      }
    } finally {
      gate.countDown();
    }
    sinks.get("a").awaitCount(J, 200, T);
    sinks.get("b").awaitCount(J, 200, T);
    assertEquals(range(0, 200), sinks.get("b").seqs(J, B1, TAG_A));
    assertEquals(range(0, 200), sinks.get("a").seqs(J, A1, TAG_B));

    assertOneConnection(a, b);
    ConnectionInfo ab = a.connection("b").orElseThrow();
    assertTrue(ab.dialedByUs(), "the connection a dialed won");
    // The first HELLO handled, on either side, found that side's own dial still pending.
    assertTrue(
        a.duplicateConnectionsClosed() + b.duplicateConnectionsClosed() >= 1, "the dials crossed");

    // Still one connection after more traffic both ways.
    for (int i = 200; i < 300; i++) {
      a.send(J, B1, packet(TAG_A, i));
      b.send(J, A1, packet(TAG_B, i));
    }
    sinks.get("a").awaitCount(J, 300, T);
    sinks.get("b").awaitCount(J, 300, T);
    assertEquals(range(0, 300), sinks.get("b").seqs(J, B1, TAG_A));
    assertEquals(range(0, 300), sinks.get("a").seqs(J, A1, TAG_B));
    assertOneConnection(a, b);
  }

  /** The natural race: both send their first packet at once, several times over. */
  @Test
  void bothSendingFirstAtOnceKeepsOneConnection() throws Exception {
    bothSendingFirstAtOnce();
  }

  /**
   * The same race with each overlay on a single event loop, where an accepted channel and its peer
   * share the loop: a channel turning writable again in the middle of a frame's two writes (length,
   * then body) must not start writing the next frames in between (it did: the receiver saw "unknown
   * frame type 0" and packets were lost).
   */
  @Test
  void bothSendingFirstAtOnceOnOneEventLoop() throws Exception {
    ioThreads = 1;
    bothSendingFirstAtOnce();
  }

  private void bothSendingFirstAtOnce() throws Exception {
    routes.put(A1, "a");
    routes.put(B1, "b");
    for (int round = 0; round < 4; round++) {
      Overlay a = start("a");
      Overlay b = start("b");
      CountDownLatch go = new CountDownLatch(1);
      List<Thread> both = new ArrayList<>();
      for (Overlay from : List.of(a, b)) {
        int dst = from == a ? B1 : A1;
        int tag = from == a ? TAG_A : TAG_B;
        Thread t =
            new Thread(
                () -> {
                  try {
                    go.await();
                    for (int i = 0; i < 300; i++) {
                      from.send(J, dst, packet(tag, i));
                    }
                  } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                  }
                });
        both.add(t);
        t.start();
      }
      go.countDown();
      for (Thread t : both) {
        t.join(T.toMillis());
      }
      sinks.get("a").awaitCount(J, 300, T);
      sinks.get("b").awaitCount(J, 300, T);
      assertEquals(range(0, 300), sinks.get("b").seqs(J, B1, TAG_A), "round " + round);
      assertEquals(range(0, 300), sinks.get("a").seqs(J, A1, TAG_B), "round " + round);
      assertOneConnection(a, b);
      if (a.duplicateConnectionsClosed() + b.duplicateConnectionsClosed() > 0) {
        assertTrue(
            a.connection("b").orElseThrow().dialedByUs(),
            "round " + round + ": both dialed, a's won");
      }
      closeAll();
    }
  }

  private static void assertOneConnection(Overlay a, Overlay b) {
    Await.until(
        "exactly one connection between a and b",
        T,
        () ->
            a.openConnections() == 1
                && b.openConnections() == 1
                && a.isConnected("b")
                && b.isConnected("a"));
    ConnectionInfo ab = a.connection("b").orElseThrow();
    ConnectionInfo ba = b.connection("a").orElseThrow();
    assertEquals(ab.local(), ba.remote(), "both ends agree on the connection");
    assertEquals(ab.remote(), ba.local(), "both ends agree on the connection");
    assertTrue(ab.dialedByUs() != ba.dialedByUs());
  }

  @Test
  void reconnectsAfterThePeerRestartsOnTheSamePort() throws Exception {
    Overlay a = start("a");
    Overlay b = start("b");
    int port = b.localAddress().getPort();
    routes.put(A1, "a");
    routes.put(B1, "b");
    for (int i = 0; i < 100; i++) {
      a.send(J, B1, packet(TAG_A, i));
    }
    sinks.get("b").awaitCount(J, 100, T);

    b.close();
    Await.until("a sees b gone", T, () -> !a.isConnected("b"));
    for (int i = 100; i < 150; i++) {
      a.send(J, B1, packet(TAG_A, i)); // queued while b is down
    }
    overlays.remove("b");
    Overlay b2 = start("b", port);
    ListSink sink2 = sinks.get("b");
    Await.until("a reconnected to the new b", T, () -> a.isConnected("b"));
    sink2.awaitCount(J, 50, T);
    assertEquals(range(100, 150), sink2.seqs(J, B1, TAG_A), "queued packets delivered in order");

    for (int i = 150; i < 250; i++) {
      a.send(J, B1, packet(TAG_A, i));
      b2.send(J, A1, packet(TAG_B, i));
    }
    sink2.awaitCount(J, 150, T);
    sinks.get("a").awaitCount(J, 100, T);
    assertEquals(range(100, 250), sink2.seqs(J, B1, TAG_A));
    assertEquals(range(150, 250), sinks.get("a").seqs(J, A1, TAG_B));
    assertEquals(0, a.droppedPackets());
    assertOneConnection(a, b2);
  }

  /**
   * a streams numbered packets of job J to b; b freezes J, then a does (as the coordinator would);
   * every packet ends up delivered before the freeze, recorded, or held after a's marker — none
   * lost, none twice — and after resume b has the whole sequence in order. Job K's packets on the
   * same connection keep flowing meanwhile.
   */
  @Test
  void freezeDrainsTheChannelWithoutLossOrDuplication() throws Exception {
    Overlay a = start("a");
    Overlay b = start("b");
    routes.put(A1, "a");
    routes.put(B1, "b"); // J's vhost on b
    routes.put(B2, "b"); // K's vhost on b
    ListSink sinkB = sinks.get("b");
    AtomicBoolean stopJ = new AtomicBoolean();
    AtomicBoolean stopK = new AtomicBoolean();
    AtomicInteger sentJ = sender("send-J", stopJ, i -> a.send(J, B1, packet(TAG_A, i)));
    AtomicInteger sentK = sender("send-K", stopK, i -> a.send(K, B2, packet(TAG_A, i)));
    sinkB.awaitCount(J, 200, T);

    CompletableFuture<Recording> recordingB = b.freeze(J, 1, Set.of("a"));
    Await.until("b records packets in flight", T, () -> b.jobStats(J).recorded() >= 20);
    int kAtFreeze = sinkB.count(K);
    CompletableFuture<Recording> recordingA = a.freeze(J, 1, Set.of("b"));
    Recording rb = recordingB.get(T.toMillis(), TimeUnit.MILLISECONDS);
    Recording ra = recordingA.get(T.toMillis(), TimeUnit.MILLISECONDS);
    int deliveredAtCut = sinkB.count(J);

    Await.until("b holds packets sent after a's marker", T, () -> b.jobStats(J).held() >= 20);
    sinkB.awaitCount(K, kAtFreeze + 200, T); // K is not affected by J's freeze
    assertTrue(b.jobStats(J).frozen());
    assertFalse(b.jobStats(K).frozen());

    stopJ.set(true);
    threads.get(0).join(T.toMillis());
    int n = sentJ.get();
    Await.until(
        "every J packet reached b",
        T,
        () -> {
          JobStats s = b.jobStats(J);
          return sinkB.count(J) + s.recorded() + s.held() == n;
        });
    assertEquals(deliveredAtCut, sinkB.count(J), "nothing of J delivered while frozen");
    int d = sinkB.count(J);
    assertEquals(range(0, d), sinkB.seqs(J, B1, TAG_A), "delivered before the freeze: a prefix");
    assertTrue(rb.packetCount() >= 20);
    assertEquals(range(d, d + rb.packetCount()), seqs(rb), "recorded: what came next");
    assertEquals(Set.of(B1), rb.byDestination().keySet());
    assertEquals(0, ra.packetCount(), "b sent nothing of J to a");
    assertEquals(n - d - rb.packetCount(), b.jobStats(J).held(), "held: the rest");

    b.resume(J, 1).get(T.toMillis(), TimeUnit.MILLISECONDS);
    a.resume(J, 1).get(T.toMillis(), TimeUnit.MILLISECONDS);
    assertEquals(range(0, n), sinkB.seqs(J, B1, TAG_A), "after resume: everything, once, in order");

    for (int i = n; i < n + 10; i++) {
      a.send(J, B1, packet(TAG_A, i));
    }
    sinkB.awaitCount(J, n + 10, T);
    assertEquals(range(0, n + 10), sinkB.seqs(J, B1, TAG_A), "forwarding again after resume");

    stopK.set(true);
    threads.get(1).join(T.toMillis());
    sinkB.awaitCount(K, sentK.get(), T);
    assertEquals(range(0, sentK.get()), sinkB.seqs(K, B2, TAG_A));
    assertEquals(0, a.droppedPackets());
    assertEquals(0, b.jobStats(J).heldDropped());
  }

  /**
   * {@link Overlay#applied} is the point after which a freeze holds everything: a packet sent right
   * after it is not delivered, however quickly it follows (the agent answers CRIU's network-lock
   * hook only then).
   */
  @Test
  void appliedMeansTheFreezeHoldsFromNowOn() throws Exception {
    Overlay a = start("a");
    start("b");
    routes.put(A1, "a");
    ListSink sinkA = sinks.get("a");
    a.send(J, A1, packet(TAG_A, 0));
    sinkA.awaitCount(J, 1, T);
    for (int epoch = 1; epoch <= 50; epoch++) {
      CompletableFuture<Recording> rec = a.freeze(J, epoch, Set.of("b"));
      a.applied(J).get(T.toMillis(), TimeUnit.MILLISECONDS);
      int before = sinkA.count(J);
      a.send(J, A1, packet(TAG_A, epoch));
      a.applied(J).get(T.toMillis(), TimeUnit.MILLISECONDS); // the send has been handled
      assertEquals(before, sinkA.count(J), "epoch " + epoch + ": held, not delivered");
      assertEquals(1, a.jobStats(J).held());
      assertFalse(rec.isDone(), "the recording waits for b's marker");
      a.resume(J, epoch).get(T.toMillis(), TimeUnit.MILLISECONDS);
      sinkA.awaitCount(J, epoch + 1, T);
    }
    assertEquals(range(0, 51), sinkA.seqs(J, A1, TAG_A));
  }

  /**
   * Three nodes all hosting job J and all sending to each other; they freeze in the order c, a, b
   * (so a and b see c's marker before their own freeze). Every recording completes, and after
   * resume each node has each sender's whole sequence, in order.
   */
  @Test
  void threeNodesFreezeInAnyOrderAndLoseNothing() throws Exception {
    Overlay a = start("a");
    Overlay b = start("b");
    Overlay c = start("c");
    routes.put(A1, "a");
    routes.put(B1, "b");
    routes.put(C1, "c");
    AtomicBoolean stopAll = new AtomicBoolean();
    AtomicInteger sent =
        sender(
            "send-all",
            stopAll,
            i -> {
              a.send(J, B1, packet(TAG_A, i));
              a.send(J, C1, packet(TAG_A, i));
              b.send(J, A1, packet(TAG_B, i));
              b.send(J, C1, packet(TAG_B, i));
              c.send(J, A1, packet(TAG_C, i));
              c.send(J, B1, packet(TAG_C, i));
            });
    sinks.get("a").awaitCount(J, 200, T);

    CompletableFuture<Recording> rc = c.freeze(J, 7, Set.of("a", "b", "c"));
    Await.until("c records packets in flight", T, () -> c.jobStats(J).recorded() >= 10);
    CompletableFuture<Recording> ra = a.freeze(J, 7, Set.of("b", "c"));
    CompletableFuture<Recording> rb = b.freeze(J, 7, Set.of("a", "c"));
    List<Recording> recordings = new ArrayList<>();
    for (CompletableFuture<Recording> r : List.of(ra, rb, rc)) {
      recordings.add(r.get(T.toMillis(), TimeUnit.MILLISECONDS));
    }
    stopAll.set(true);
    threads.get(0).join(T.toMillis());
    int n = sent.get();
    for (String node : List.of("a", "b", "c")) {
      ListSink s = sinks.get(node);
      Overlay o = overlays.get(node);
      Await.until(
          "every J packet reached " + node,
          T,
          () -> {
            JobStats st = o.jobStats(J);
            return s.count(J) + st.recorded() + st.held() == 2L * n;
          });
    }
    assertTrue(
        recordings.get(2).packetCount() >= 10, "c recorded what a and b sent before their freeze");

    for (Overlay o : List.of(a, b, c)) {
      o.resume(J, 7).get(T.toMillis(), TimeUnit.MILLISECONDS);
    }
    assertEquals(range(0, n), sinks.get("a").seqs(J, A1, TAG_B));
    assertEquals(range(0, n), sinks.get("a").seqs(J, A1, TAG_C));
    assertEquals(range(0, n), sinks.get("b").seqs(J, B1, TAG_A));
    assertEquals(range(0, n), sinks.get("b").seqs(J, B1, TAG_C));
    assertEquals(range(0, n), sinks.get("c").seqs(J, C1, TAG_A));
    assertEquals(range(0, n), sinks.get("c").seqs(J, C1, TAG_B));
    for (Overlay o : List.of(a, b, c)) {
      assertEquals(0, o.droppedPackets());
      assertEquals(2 * n, sinks.get(o.nodeName()).count(J));
    }
  }

  /**
   * A node that kept an earlier incarnation's key (cut off while the job restarted elsewhere)
   * reaches nothing: its packets and its marker are dropped on arrival and counted; once it carries
   * the current key its packets are delivered.
   */
  @Test
  void framesWithAnotherIncarnationsKeyAreDropped() throws Exception {
    Overlay a = start("a");
    Overlay b = start("b");
    routes.put(B1, "b");
    a.setKey(J, 0x1111); // the earlier incarnation
    b.setKey(J, 0x2222); // the current one
    assertEquals(0x2222, b.key(J));
    for (int i = 0; i < 50; i++) {
      a.send(J, B1, packet(TAG_A, i));
    }
    a.send(K, B1, packet(TAG_A, 0)); // another job, no key on either side: delivered
    sinks.get("b").awaitCount(K, 1, T);
    Await.until("b dropped a's 50 stale packets", T, () -> b.jobStats(J).staleDropped() == 50);

    CompletableFuture<Recording> rb = b.freeze(J, 1, Set.of("a"));
    a.freeze(J, 1, Set.of("b"));
    Await.until("b dropped a's stale marker", T, () -> b.jobStats(J).staleDropped() == 51);
    Await.until("a dropped b's marker", T, () -> a.jobStats(J).staleDropped() == 1);
    assertFalse(rb.isDone(), "a marker of another incarnation does not count");
    b.resume(J, 1).get(T.toMillis(), TimeUnit.MILLISECONDS);
    a.resume(J, 1).get(T.toMillis(), TimeUnit.MILLISECONDS);
    assertEquals(0, sinks.get("b").count(J), "no stale packet delivered, recorded or held");

    a.setKey(J, 0x2222);
    a.send(J, B1, packet(TAG_A, 50));
    sinks.get("b").awaitCount(J, 1, T);
    assertEquals(List.of(50), sinks.get("b").seqs(J, B1, TAG_A));
    assertEquals(51, b.jobStats(J).staleDropped());

    b.removeJob(J);
    assertEquals(0, b.key(J), "a job removed forgets its key");
  }

  /** Markers open the connection if there is none yet; a freeze with no traffic completes. */
  @Test
  void freezeConnectsToPeersThatAreNotConnectedYet() throws Exception {
    Overlay a = start("a");
    Overlay b = start("b");
    assertFalse(a.isConnected("b"));
    CompletableFuture<Recording> rb = b.freeze(J, 1, Set.of("a", "b"));
    CompletableFuture<Recording> ra = a.freeze(J, 1, Set.of("b"));
    assertEquals(0, ra.get(T.toMillis(), TimeUnit.MILLISECONDS).packetCount());
    assertEquals(0, rb.get(T.toMillis(), TimeUnit.MILLISECONDS).packetCount());
    a.resume(J, 1).get(T.toMillis(), TimeUnit.MILLISECONDS);
    b.resume(J, 1).get(T.toMillis(), TimeUnit.MILLISECONDS);
    assertOneConnection(a, b);
  }

  /**
   * a's marker is written on a connection that dies before b reads it (b stops reading, then drops
   * the connection): a sends the marker again on the next connection, and b's recording completes.
   */
  @Test
  void aMarkerLostWithItsConnectionIsSentAgain() throws Exception {
    Overlay a = start("a");
    Overlay b = start("b");
    routes.put(B1, "b");
    a.send(J, B1, packet(TAG_A, 0));
    sinks.get("b").awaitCount(J, 1, T);
    assertOneConnection(a, b);

    Channel atB = b.connections().iterator().next();
    atB.config().setAutoRead(false);
    atB.eventLoop().submit(() -> {}).get(T.toMillis(), TimeUnit.MILLISECONDS);
    CompletableFuture<Recording> rb = b.freeze(J, 1, Set.of("a"));
    CompletableFuture<Recording> ra = a.freeze(J, 1, Set.of("b"));
    assertEquals(
        0, ra.get(T.toMillis(), TimeUnit.MILLISECONDS).packetCount(), "b's marker reached a");
    for (int round = 0; round < 2; round++) { // a's marker and its (consolidated) flush are out
      for (Channel ch : a.connections()) {
        ch.eventLoop().submit(() -> {}).get(T.toMillis(), TimeUnit.MILLISECONDS);
      }
    }
    assertFalse(rb.isDone(), "a's marker sits unread at b");

    atB.close();
    assertEquals(0, rb.get(T.toMillis(), TimeUnit.MILLISECONDS).packetCount());
    a.resume(J, 1).get(T.toMillis(), TimeUnit.MILLISECONDS);
    b.resume(J, 1).get(T.toMillis(), TimeUnit.MILLISECONDS);
    a.send(J, B1, packet(TAG_A, 1));
    sinks.get("b").awaitCount(J, 2, T);
    assertEquals(range(0, 2), sinks.get("b").seqs(J, B1, TAG_A));
    assertOneConnection(a, b);
  }

  /** On restart, recorded packets are injected where their destination now lives. */
  @Test
  void injectRoutesRestoredPacketsByDestination() throws Exception {
    Overlay a = start("a");
    start("b");
    routes.put(A1, "a");
    routes.put(B1, "b");
    List<RecordedPacket> restored = new ArrayList<>();
    for (int i = 0; i < 6; i++) {
      ByteBuf p = packet(TAG_C, i);
      restored.add(new RecordedPacket(i % 2 == 0 ? A1 : B1, ByteBufUtil.getBytes(p)));
      p.release();
    }
    a.inject(J, restored).get(T.toMillis(), TimeUnit.MILLISECONDS);
    assertEquals(List.of(0, 2, 4), sinks.get("a").seqs(J, A1, TAG_C));
    sinks.get("b").awaitCount(J, 3, T);
    assertEquals(List.of(1, 3, 5), sinks.get("b").seqs(J, B1, TAG_C));
  }
}
