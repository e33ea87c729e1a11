package io.cohort.drain;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.Objects;

/**
 * Settings of one {@link Overlay}; the defaults live in {@link #defaults}, and only there.
 *
 * @param nodeName this node's name (1..255 UTF-8 bytes); also the tie-break key
 * @param listen address to listen on (port 0 = ephemeral)
 * @param ioThreads event loop threads for connections, peers and jobs
 * @param queueLimit packets queued per peer while it is not connected (or not writable); beyond it
 *     the oldest queued packet is dropped
 * @param heldLimit packets held per frozen job (after-marker and local); beyond it the oldest held
 *     packet is dropped
 * @param backoffMin first reconnect delay, doubled on each failure ...
 * @param backoffMax ... up to this
 * @param handshakeTimeout a connection without HELLO after this long is closed
 * @param connectTimeout TCP connect timeout
 */
public record OverlayConfig(
    String nodeName,
    InetSocketAddress listen,
    int ioThreads,
    int queueLimit,
    int heldLimit,
    Duration backoffMin,
    Duration backoffMax,
    Duration handshakeTimeout,
    Duration connectTimeout) {

  public OverlayConfig {
    new Frame.Hello(nodeName, 0); // validates the name
    Objects.requireNonNull(listen, "listen");
    positive("ioThreads", ioThreads);
    positive("queueLimit", queueLimit);
    positive("heldLimit", heldLimit);
    positive("backoffMin", backoffMin.toMillis());
    if (backoffMax.compareTo(backoffMin) < 0) {
      throw new IllegalArgumentException(
          "backoffMax " + backoffMax + " < backoffMin " + backoffMin);
    }
    positive("handshakeTimeout", handshakeTimeout.toMillis());
    positive("connectTimeout", connectTimeout.toMillis());
  }

  /** The defaults for {@code nodeName} listening on {@code listen}. */
  public static OverlayConfig defaults(String nodeName, InetSocketAddress listen) {
    return new OverlayConfig(
        nodeName,
        listen,
        2,
        4096,
        16384,
        Duration.ofMillis(50),
        Duration.ofSeconds(2),
        Duration.ofSeconds(5),
        Duration.ofSeconds(3));
  }

  public OverlayConfig withListen(InetSocketAddress listen) {
    return new OverlayConfig(
        nodeName,
        listen,
        ioThreads,
        queueLimit,
        heldLimit,
        backoffMin,
        backoffMax,
        handshakeTimeout,
        connectTimeout);
  }

  public OverlayConfig withIoThreads(int ioThreads) {
    return new OverlayConfig(
        nodeName,
        listen,
        ioThreads,
        queueLimit,
        heldLimit,
        backoffMin,
        backoffMax,
        handshakeTimeout,
        connectTimeout);
  }

  public OverlayConfig withQueueLimits(int queueLimit, int heldLimit) {
    return new OverlayConfig(
        nodeName,
        listen,
        ioThreads,
        queueLimit,
        heldLimit,
        backoffMin,
        backoffMax,
        handshakeTimeout,
        connectTimeout);
  }

  public OverlayConfig withBackoff(Duration backoffMin, Duration backoffMax) {
    return new OverlayConfig(
        nodeName,
        listen,
        ioThreads,
        queueLimit,
        heldLimit,
        backoffMin,
        backoffMax,
        handshakeTimeout,
        connectTimeout);
  }

  private static void positive(String name, long value) {
    if (value <= 0) {
      throw new IllegalArgumentException(name + " must be > 0, got " + value);
    }
  }
}
