package io.cohort.drain;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.EventExecutor;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;
import java.util.function.LongSupplier;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The per-job gate between the overlay and the local sink: for every packet of one job it decides
 * whether it is delivered, recorded (in flight at the checkpoint cut) or held (for delivery on
 * resume), and it counts the markers of a freeze.
 *
 * <pre>
 *            freeze(e, peers)                       resume(e): recorded, then held,
 *  RUNNING ---------------------&gt; FROZEN(e) ------&gt; then RUNNING again
 *  deliver                        packet from peer p:
 *                                   p expected and no MARKER(e) from p yet -&gt; record
 *                                   otherwise                              -&gt; hold
 *                                 local packet (from this node's TUN)      -&gt; hold
 *                                 MARKER(e) from every expected peer -&gt; recording complete
 * </pre>
 *
 * A marker for a later epoch that arrives before the local freeze (the peer froze first) is
 * remembered and counts when the local freeze of that epoch comes; a marker for an epoch already
 * frozen or resumed is a duplicate and ignored.
 *
 * <p>Before all of this, a packet or marker from a peer that carries another network key than the
 * job's here (as it is when the frame is handled) is dropped and counted: it comes from another
 * incarnation of the job (a vhost left running on a node that was cut off), and must neither reach
 * the vhosts nor count as a marker.
 *
 * <p>All state is confined to one serial executor (an event loop of the overlay): every public
 * method may be called from any thread and hops onto it, so packets and markers from one channel
 * keep their order and a freeze is a clean cut — no delivery of the job happens after the freeze
 * task ran and before resume. No locks.
 */
final class JobDrain {

  private static final Logger log = LoggerFactory.getLogger(JobDrain.class);

  enum Phase {
    RUNNING,
    FROZEN
  }

  private final String who;
  private final String jobId;
  private final EventExecutor executor;
  private final PacketSink sink;
  private final int heldLimit;
  private final LongSupplier key;

  // Confined to executor.
  private Phase phase = Phase.RUNNING;
  private long epoch = -1;
  private Set<String> expected = Set.of();
  private final Set<String> marked = new HashSet<>();
  private final Map<String, Long> earlyMarkers = new HashMap<>();
  private List<RecordedPacket> recorded = new ArrayList<>();
  private final ArrayDeque<RecordedPacket> held = new ArrayDeque<>();
  private CompletableFuture<Recording> recording;
  private boolean closed;

  // Single writer (executor), read by anyone.
  private volatile boolean frozenView;
  private volatile long epochView = -1;
  private volatile long delivered;
  private volatile long recordedCount;
  private volatile long heldCount;
  private volatile long heldDropped;
  private volatile long staleDropped;

  /**
   * @param key the job's network key on this node now (read as each frame from a peer is handled)
   */
  JobDrain(
      String who,
      String jobId,
      EventExecutor executor,
      PacketSink sink,
      int heldLimit,
      LongSupplier key) {
    this.who = who + " job " + jobId;
    this.jobId = jobId;
    this.executor = executor;
    this.sink = sink;
    this.heldLimit = heldLimit;
    this.key = key;
  }

  /** A PACKET of this job received from {@code peer}; takes ownership of it. */
  void onRemotePacket(String peer, Frame.Packet packet) {
    run(
        () -> {
          if (closed) {
            packet.release();
          } else if (stale(peer, packet.key(), "packet")) {
            packet.release();
          } else if (phase == Phase.RUNNING) {
            deliver(packet.dstAddress(), packet.content());
          } else if (expected.contains(peer) && !marked.contains(peer)) {
            record(packet);
          } else {
            hold(packet.dstAddress(), packet.content());
          }
        },
        packet);
  }

  /** A packet of this job from the local TUN for a local vhost; takes ownership of it. */
  void onLocalPacket(int dstAddress, ByteBuf payload) {
    run(
        () -> {
          if (closed) {
            payload.release();
          } else if (phase == Phase.RUNNING) {
            deliver(dstAddress, payload);
          } else {
            hold(dstAddress, payload);
          }
        },
        payload);
  }

  /**
   * MARKER(this job, epoch) received from {@code peer}, sent with network key {@code markerKey}.
   */
  void onMarker(String peer, long markerKey, long markerEpoch) {
    run(
        () -> {
          if (closed || stale(peer, markerKey, "marker of epoch " + markerEpoch)) {
            return;
          }
          if (phase == Phase.FROZEN && markerEpoch == epoch) {
            if (!expected.contains(peer)) {
              log.warn(
                  "{} epoch {}: marker from {}, which hosts no vhost of the job; ignored",
                  who,
                  epoch,
                  peer);
            } else if (!marked.add(peer)) {
              log.debug("{} epoch {}: duplicate marker from {}", who, epoch, peer);
            } else {
              log.debug(
                  "{} epoch {}: marker from {} ({}/{})",
                  who,
                  epoch,
                  peer,
                  marked.size(),
                  expected.size());
              completeIfAllMarked();
            }
          } else if (markerEpoch > epoch) {
            earlyMarkers.merge(peer, markerEpoch, Math::max);
            log.debug(
                "{}: marker of epoch {} from {} before the local freeze; kept",
                who,
                markerEpoch,
                peer);
          } else {
            log.debug(
                "{}: stale marker of epoch {} from {} (at epoch {}); ignored",
                who,
                markerEpoch,
                peer,
                epoch);
          }
        },
        null);
  }

  /**
   * Freezes the job at {@code newEpoch}, expecting a marker from each of {@code peers}; once frozen
   * (on the executor) runs {@code sendMarkers}. Idempotent for the same epoch.
   */
  CompletableFuture<Recording> freeze(long newEpoch, Set<String> peers, Runnable sendMarkers) {
    return call(
        () -> {
          if (closed) {
            return CompletableFuture.failedFuture(
                new IllegalStateException(who + ": overlay closed"));
          }
          if (phase == Phase.FROZEN) {
            if (newEpoch == epoch) {
              return recording.copy();
            }
            return CompletableFuture.failedFuture(
                new IllegalStateException(
                    "job "
                        + jobId
                        + " is frozen at epoch "
                        + epoch
                        + "; resume it before freezing epoch "
                        + newEpoch));
          }
          if (newEpoch <= epoch) {
            return CompletableFuture.failedFuture(
                new IllegalArgumentException(
                    "epoch "
                        + newEpoch
                        + " of job "
                        + jobId
                        + " is not after its last epoch "
                        + epoch));
          }
          phase = Phase.FROZEN;
          epoch = newEpoch;
          expected = Set.copyOf(peers);
          marked.clear();
          recorded = new ArrayList<>();
          recordedCount = 0;
          for (Iterator<Map.Entry<String, Long>> it = earlyMarkers.entrySet().iterator();
              it.hasNext(); ) {
            Map.Entry<String, Long> e = it.next();
            if (e.getValue() == newEpoch && expected.contains(e.getKey())) {
              marked.add(e.getKey());
            }
            if (e.getValue() <= newEpoch) {
              it.remove();
            }
          }
          recording = new CompletableFuture<>();
          frozenView = true;
          epochView = newEpoch;
          log.info(
              "{} epoch {}: frozen; expecting markers from {}{}",
              who,
              epoch,
              new TreeSet<>(expected),
              marked.isEmpty() ? "" : " (already from " + new TreeSet<>(marked) + ")");
          sendMarkers.run();
          completeIfAllMarked();
          return recording.copy();
        });
  }

  /**
   * Ends the freeze of {@code resumeEpoch}: delivers the recorded packets, then the held ones, in
   * order, then resumes delivery. If markers are still missing (an aborted epoch), the recording
   * fails and what was recorded is delivered all the same. Idempotent once resumed.
   */
  CompletableFuture<Void> resume(long resumeEpoch) {
    return call(
        () -> {
          if (phase == Phase.RUNNING) {
            if (resumeEpoch == epoch) {
              return CompletableFuture.completedFuture(null);
            }
            return CompletableFuture.failedFuture(
                new IllegalStateException(
                    "job "
                        + jobId
                        + " is not frozen (last epoch "
                        + epoch
                        + "), cannot resume epoch "
                        + resumeEpoch));
          }
          if (resumeEpoch != epoch) {
            return CompletableFuture.failedFuture(
                new IllegalStateException(
                    "job " + jobId + " is frozen at epoch " + epoch + ", not " + resumeEpoch));
          }
          if (!recording.isDone()) {
            Set<String> missing = new TreeSet<>(expected);
            missing.removeAll(marked);
            recording.completeExceptionally(
                new IllegalStateException(
                    "job "
                        + jobId
                        + " epoch "
                        + epoch
                        + " resumed before the markers from "
                        + missing
                        + " arrived"));
          }
          int recordedN = recorded.size();
          int heldN = held.size();
          for (RecordedPacket p : recorded) {
            deliver(p.dstAddress(), Unpooled.wrappedBuffer(p.data()));
          }
          recorded = new ArrayList<>();
          for (RecordedPacket p; (p = held.poll()) != null; ) {
            deliver(p.dstAddress(), Unpooled.wrappedBuffer(p.data()));
          }
          heldCount = 0;
          phase = Phase.RUNNING;
          frozenView = false;
          log.info(
              "{} epoch {}: resumed; re-injected {} recorded and {} held packets",
              who,
              epoch,
              recordedN,
              heldN);
          return CompletableFuture.completedFuture(null);
        });
  }

  /** Delivers restored in-flight packets (all for local vhosts), in order, whatever the phase. */
  CompletableFuture<Void> inject(List<RecordedPacket> packets) {
    return call(
        () -> {
          if (closed) {
            return CompletableFuture.failedFuture(
                new IllegalStateException(who + ": overlay closed"));
          }
          for (RecordedPacket p : packets) {
            deliver(p.dstAddress(), Unpooled.wrappedBuffer(p.data()));
          }
          log.info("{}: injected {} restored packets", who, packets.size());
          return CompletableFuture.completedFuture(null);
        });
  }

  /** Completes once every task queued before it on the executor has run. */
  CompletableFuture<Void> applied() {
    return call(() -> CompletableFuture.completedFuture(null));
  }

  JobStats stats() {
    return new JobStats(
        frozenView, epochView, delivered, recordedCount, heldCount, heldDropped, staleDropped);
  }

  /** Drops held packets and fails a pending recording; later packets are released. */
  void close() {
    run(
        () -> {
          closed = true;
          if (recording != null && !recording.isDone()) {
            recording.completeExceptionally(new IllegalStateException(who + ": overlay closed"));
          }
          held.clear();
          heldCount = 0;
        },
        null);
  }

  /**
   * Whether a frame from {@code peer} carries another network key than the job's here: then it is
   * counted, and the caller drops it.
   */
  private boolean stale(String peer, long frameKey, String what) {
    long mine = key.getAsLong();
    if (frameKey == mine) {
      return false;
    }
    staleDropped++;
    log.debug(
        "{}: {} from {} with network key {}, not this incarnation's {}; dropped ({} so far)",
        who,
        what,
        peer,
        Long.toHexString(frameKey),
        Long.toHexString(mine),
        staleDropped);
    return true;
  }

  private void completeIfAllMarked() {
    if (phase == Phase.FROZEN && !recording.isDone() && marked.containsAll(expected)) {
      Recording r = new Recording(jobId, epoch, recorded);
      log.info(
          "{} epoch {}: markers from all {} peers; recorded {} packets ({} bytes)",
          who,
          epoch,
          expected.size(),
          r.packetCount(),
          r.byteCount());
      recording.complete(r);
    }
  }

  private void deliver(int dstAddress, ByteBuf payload) {
    try {
      sink.deliver(jobId, dstAddress, payload);
      delivered++;
    } catch (RuntimeException e) {
      log.warn(
          "{}: the sink failed on a packet for {}: {}", who, Ipv4.format(dstAddress), e.toString());
    }
  }

  private void record(Frame.Packet packet) {
    try {
      recorded.add(new RecordedPacket(packet.dstAddress(), ByteBufUtil.getBytes(packet.content())));
      recordedCount = recorded.size();
    } finally {
      packet.release();
    }
  }

  private void hold(int dstAddress, ByteBuf payload) {
    try {
      if (held.size() >= heldLimit) {
        held.poll();
        if (heldDropped++ == 0) {
          log.warn(
              "{} epoch {}: more than {} held packets; dropping the oldest", who, epoch, heldLimit);
        }
      }
      held.add(new RecordedPacket(dstAddress, ByteBufUtil.getBytes(payload)));
      heldCount = held.size();
    } finally {
      payload.release();
    }
  }

  /** Runs {@code task} on the executor; if it is shut down, releases {@code owned}. */
  private void run(Runnable task, Object owned) {
    if (executor.inEventLoop()) {
      task.run();
      return;
    }
    try {
      executor.execute(task);
    } catch (RejectedExecutionException e) {
      ReferenceCountUtil.release(owned);
    }
  }

  private <T> CompletableFuture<T> call(Supplier<CompletableFuture<T>> task) {
    if (executor.inEventLoop()) {
      return task.get();
    }
    CompletableFuture<T> result = new CompletableFuture<>();
    try {
      executor.execute(
          () ->
              task.get()
                  .whenComplete(
                      (v, t) -> {
                        if (t != null) {
                          result.completeExceptionally(t);
                        } else {
                          result.complete(v);
                        }
                      }));
    } catch (RejectedExecutionException e) {
      result.completeExceptionally(new IllegalStateException(who + ": overlay closed"));
    }
    return result;
  }
}
