package io.cohort.drain;

import static org.junit.jupiter.api.Assertions.fail;

import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import io.netty.buffer.Unpooled;
import java.nio.ByteBuffer;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/** A sink that keeps a copy of every delivered packet, in delivery order, and releases it. */
final class ListSink implements PacketSink {

  /** One delivered packet; test packets carry a sequence number and a tag (the sender). */
  record Delivery(String job, int dst, byte[] data) {
    int seq() {
      return ByteBuffer.wrap(data).getInt(0);
    }

    int tag() {
      return ByteBuffer.wrap(data).getInt(4);
    }
  }

  private final List<Delivery> deliveries = new ArrayList<>(); // guarded by this
  private final Map<String, Integer> counts = new HashMap<>(); // guarded by this

  /** A test packet: seq, tag, then 0..63 bytes of padding so sizes vary. */
  static ByteBuf packet(int tag, int seq) {
    return Unpooled.buffer(8 + seq % 64).writeInt(seq).writeInt(tag).writeZero(seq % 64);
  }

  static int seqOf(byte[] data) {
    return ByteBuffer.wrap(data).getInt(0);
  }

  @Override
  public synchronized void deliver(String jobId, int dstAddress, ByteBuf packet) {
    try {
      deliveries.add(new Delivery(jobId, dstAddress, ByteBufUtil.getBytes(packet)));
      counts.merge(jobId, 1, Integer::sum);
      notifyAll();
    } finally {
      packet.release();
    }
  }

  synchronized List<Delivery> of(String job) {
    return deliveries.stream().filter(d -> d.job().equals(job)).collect(Collectors.toList());
  }

  synchronized int count(String job) {
    return counts.getOrDefault(job, 0);
  }

  /**
   * Sequence numbers delivered for {@code job} to {@code dst} from sender {@code tag}, in order.
   */
  synchronized List<Integer> seqs(String job, int dst, int tag) {
    return deliveries.stream()
        .filter(d -> d.job().equals(job) && d.dst() == dst && d.tag() == tag)
        .map(Delivery::seq)
        .collect(Collectors.toList());
  }

  /** Waits until at least {@code n} packets of {@code job} were delivered. */
  synchronized void awaitCount(String job, int n, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    int have;
    while ((have = count(job)) < n) {
      long left = deadline - System.nanoTime();
      if (left <= 0) {
        fail(
            "timed out after "
                + timeout
                + ": "
                + have
                + " of "
                + n
                + " packets of "
                + job
                + " delivered");
      }
      wait(Math.max(1, left / 1_000_000));
    }
  }

  static List<Integer> range(int from, int to) {
    List<Integer> list = new ArrayList<>();
    for (int i = from; i < to; i++) {
      list.add(i);
    }
    return list;
  }
}
