package io.cohort.drain;

import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.EventLoop;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.net.InetSocketAddress;
import java.util.ArrayDeque;
import java.util.HashMap;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The one logical connection from this node to one peer node: which TCP channel carries it, dialing
 * and redialing with backoff, the bounded queue of frames waiting for it, and the markers sent on
 * it.
 *
 * <h2>One connection per node pair</h2>
 *
 * The dialer speaks first (HELLO); the acceptor answers HELLO only if it keeps the channel,
 * otherwise it closes it. Neither side sends a PACKET or MARKER on a channel before it has the
 * other's HELLO, so nothing is ever written on a channel that loses. When two live channels to the
 * same peer incarnation meet — both nodes dialed at once, or a redial — {@link #keepNewer} decides,
 * the same way on both sides: <b>keep the channel dialed by the node with the lower name</b>
 * (String order); if the same node dialed both, keep the newer. A HELLO with a new incarnation
 * means the peer restarted: its new channel replaces the old.
 *
 * <h2>Threads</h2>
 *
 * All state is confined to {@link #loop}, an event loop chosen for this peer: channels this node
 * dials are registered on it; events of accepted channels (on their own loops) hop onto it. Writes
 * from here to a channel of another loop are queued by Netty in order.
 */
final class PeerConnection {

  private static final Logger log = LoggerFactory.getLogger(PeerConnection.class);

  private final Overlay overlay;
  private final String who;
  final String peer;
  final EventLoop loop;

  // Confined to loop.
  private Channel current;
  private boolean currentDialedBySelf;
  private long currentIncarnation;
  private Channel dialing;
  private Throwable dialFailure;
  private ScheduledFuture<?> reconnectTimer;
  private int failedDials;
  private final ArrayDeque<Frame> queue = new ArrayDeque<>();
  private int queuedPackets;

  /** Markers of jobs still frozen, by job id, with the channel each was last written on. */
  private final Map<String, SentMarker> markers = new HashMap<>();

  private boolean closed;

  // Single writer (loop), read by anyone.
  private volatile ConnectionInfo info;
  private volatile long dropped;
  private volatile long duplicatesClosed;

  private static final class SentMarker {
    final Frame.Marker marker;
    Channel writtenOn;

    SentMarker(Frame.Marker marker) {
      this.marker = marker;
    }
  }

  PeerConnection(Overlay overlay, String peer, EventLoop loop) {
    this.overlay = overlay;
    this.who = overlay.who();
    this.peer = peer;
    this.loop = loop;
  }

  /**
   * Whether, of two live channels between {@code self} and {@code peer} (same incarnations), the
   * newer one is kept: the one dialed by the lower node name wins; same dialer, newer wins.
   */
  static boolean keepNewer(
      String self, String peer, boolean existingDialedBySelf, boolean newerDialedBySelf) {
    String existingDialer = existingDialedBySelf ? self : peer;
    String newerDialer = newerDialedBySelf ? self : peer;
    return existingDialer.equals(newerDialer) || newerDialer.compareTo(existingDialer) < 0;
  }

  // ---- called from any thread -------------------------------------------------------

  /** Sends (or queues) {@code packet}; takes ownership. */
  void send(Frame.Packet packet) {
    run(
        () -> {
          if (closed) {
            packet.release();
          } else if (writableNow()) {
            current.writeAndFlush(packet, current.voidPromise());
          } else {
            enqueue(packet);
            connect();
          }
        },
        packet);
  }

  /**
   * Sends {@code marker} after everything sent so far, and again on any new channel until {@link
   * #markerDone}.
   */
  void sendMarker(Frame.Marker marker) {
    run(
        () -> {
          if (closed) {
            return;
          }
          SentMarker sent = new SentMarker(marker);
          markers.put(marker.jobId(), sent);
          if (writableNow()) {
            sent.writtenOn = current;
            current.writeAndFlush(marker, current.voidPromise());
          } else {
            enqueue(marker);
            connect();
          }
        },
        null);
  }

  /** The job resumed: stop re-sending its marker on new channels. */
  void markerDone(String jobId, long epoch) {
    run(
        () -> {
          SentMarker sent = markers.get(jobId);
          if (sent != null && sent.marker.epoch() == epoch) {
            markers.remove(jobId);
          }
        },
        null);
  }

  /** The job is gone: stop re-sending its marker. */
  void forgetMarker(String jobId) {
    run(() -> markers.remove(jobId), null);
  }

  /** Opens the connection now if there is none (and no dial or redial is pending). */
  void connectNow() {
    run(this::connect, null);
  }

  /** A HELLO arrived on {@code ch} (on its loop); decides whether to keep the channel. */
  void onHello(Channel ch, boolean dialedBySelf, long incarnation) {
    run(() -> decide(ch, dialedBySelf, incarnation), null);
  }

  /**
   * {@code ch} became writable again. Always deferred to a later task, never run inline: Netty
   * fires writability changes synchronously from inside a write or flush on {@code ch}
   * (FlushConsolidationHandler flushes when the channel turns unwritable, and that flush can make
   * it writable again), and a frame is two writes (length prefix, then body): writing more frames
   * from here would land between them and corrupt the stream.
   */
  void onWritable(Channel ch) {
    try {
      loop.execute(
          () -> {
            if (ch == current) {
              flushQueue();
            }
          });
    } catch (RejectedExecutionException e) {
      // shutting down: nothing left to flush
    }
  }

  /** Closes the connection for good and drops the queue (overlay closing or peer removed). */
  void close() {
    run(
        () -> {
          closed = true;
          cancelReconnect();
          if (current != null) {
            current.close();
            current = null;
          }
          if (dialing != null) {
            dialing.close();
            dialing = null;
          }
          info = null;
          for (Frame f; (f = queue.poll()) != null; ) {
            ReferenceCountUtil.release(f);
          }
          queuedPackets = 0;
        },
        null);
  }

  ConnectionInfo info() {
    return info;
  }

  long dropped() {
    return dropped;
  }

  long duplicatesClosed() {
    return duplicatesClosed;
  }

  // ---- on loop ------------------------------------------------------------------------

  private boolean writableNow() {
    return current != null && queue.isEmpty() && current.isWritable();
  }

  private void decide(Channel ch, boolean dialedBySelf, long incarnation) {
    if (closed || !ch.isActive()) {
      ch.close();
      return;
    }
    if (current != null && !current.isActive()) {
      // Its close notification is on its way and will find nothing to do: redial here
      // (adopting a channel below cancels this).
      current = null;
      info = null;
      scheduleReconnect();
    }
    if (dialedBySelf) {
      if (ch != dialing) {
        ch.close(); // a dial we abandoned in the meantime
        return;
      }
      dialing = null;
      if (current != null) {
        // Cannot normally happen: we only dial without a connection.
        if (!replaceCurrent(ch, true, incarnation)) {
          return;
        }
      }
      adopt(ch, true, incarnation);
      return;
    }
    if (current != null) {
      if (!replaceCurrent(ch, false, incarnation)) {
        return;
      }
    } else if (dialing != null) {
      if (keepNewer(overlay.nodeName(), peer, true, false)) {
        log.info(
            "{} {} dialed us while we were dialing it: keeping its connection ({} < {})",
            who,
            peer,
            peer,
            overlay.nodeName());
        Channel abandoned = dialing;
        dialing = null;
        duplicatesClosed++;
        abandoned.close();
      } else {
        log.info(
            "{} {} dialed us while we were dialing it: keeping ours ({} < {})",
            who,
            peer,
            overlay.nodeName(),
            peer);
        duplicatesClosed++;
        ch.close();
        return;
      }
    }
    // Accept: answer HELLO first, so it precedes anything adopt() writes.
    ch.writeAndFlush(overlay.hello(), ch.voidPromise());
    adopt(ch, false, incarnation);
  }

  /** Another channel arrived while {@code current} is live: returns whether it replaces it. */
  private boolean replaceCurrent(Channel ch, boolean dialedBySelf, long incarnation) {
    Channel old = current;
    if (incarnation != currentIncarnation) {
      log.info("{} {} restarted (new incarnation): replacing the connection {}", who, peer, old);
    } else if (keepNewer(overlay.nodeName(), peer, currentDialedBySelf, dialedBySelf)) {
      log.info("{} second connection with {}: keeping the newer one ({})", who, peer, ch);
      duplicatesClosed++;
    } else {
      log.info(
          "{} second connection with {}: keeping the one dialed by {}",
          who,
          peer,
          currentDialedBySelf ? overlay.nodeName() : peer);
      duplicatesClosed++;
      ch.close();
      return false;
    }
    current = null;
    info = null;
    old.close();
    return true;
  }

  private void adopt(Channel ch, boolean dialedBySelf, long incarnation) {
    current = ch;
    currentDialedBySelf = dialedBySelf;
    currentIncarnation = incarnation;
    failedDials = 0;
    dialFailure = null;
    cancelReconnect();
    info =
        new ConnectionInfo(
            peer,
            (InetSocketAddress) ch.localAddress(),
            (InetSocketAddress) ch.remoteAddress(),
            dialedBySelf);
    if (!dialedBySelf) {
      ch.closeFuture().addListener(f -> run(() -> onClosed(ch), null));
    }
    log.info(
        "{} connected to {} ({} -> {}, dialed by {}); {} frames queued",
        who,
        peer,
        info.local(),
        info.remote(),
        dialedBySelf ? "us" : peer,
        queue.size());
    // Markers already written on an earlier channel may have died with it: send them
    // again (a duplicate marker is ignored). They precede every queued frame, which was
    // submitted after them.
    for (SentMarker sent : markers.values()) {
      if (sent.writtenOn != null && sent.writtenOn != ch) {
        sent.writtenOn = ch;
        ch.write(sent.marker, ch.voidPromise());
      }
    }
    flushQueue();
    ch.flush();
  }

  private void flushQueue() {
    Channel ch = current;
    boolean wrote = false;
    while (!queue.isEmpty() && ch.isWritable()) {
      Frame f = queue.poll();
      if (f instanceof Frame.Packet) {
        queuedPackets--;
      } else if (f instanceof Frame.Marker m) {
        SentMarker sent = markers.get(m.jobId());
        if (sent != null && sent.marker.equals(m)) {
          sent.writtenOn = ch;
        }
      }
      ch.write(f, ch.voidPromise());
      wrote = true;
    }
    if (wrote) {
      ch.flush();
    }
  }

  private void enqueue(Frame frame) {
    queue.add(frame);
    if (!(frame instanceof Frame.Packet)) {
      return; // markers are never dropped
    }
    if (++queuedPackets <= overlay.config().queueLimit()) {
      return;
    }
    for (Iterator<Frame> it = queue.iterator(); it.hasNext(); ) {
      Frame f = it.next();
      if (f instanceof Frame.Packet oldest) {
        it.remove();
        oldest.release();
        queuedPackets--;
        if (dropped++ == 0) {
          log.warn(
              "{} more than {} packets queued for {}; dropping the oldest",
              who,
              overlay.config().queueLimit(),
              peer);
        }
        return;
      }
    }
  }

  private void connect() {
    if (closed || current != null || dialing != null || reconnectTimer != null) {
      return;
    }
    InetSocketAddress address = overlay.peerAddress(peer);
    if (address == null) {
      log.debug("{} no address for {} yet: waiting for it or for it to dial us", who, peer);
      return;
    }
    ChannelFuture connect = overlay.dial(loop, peer, address);
    Channel ch = connect.channel();
    dialing = ch;
    connect.addListener(
        f -> {
          if (!f.isSuccess() && ch == dialing) {
            dialFailure = f.cause();
          }
        });
    ch.closeFuture().addListener(f -> run(() -> onClosed(ch), null));
  }

  private void onClosed(Channel ch) {
    if (ch == dialing) {
      dialing = null;
      if (current == null) {
        long delay = scheduleReconnect();
        if (dialFailure == null) {
          // Usually the tie-break: the peer keeps the channel it dialed, which is on its way.
          log.info(
              "{} {} closed our connection before answering HELLO; retrying in {} ms unless it connects first",
              who,
              peer,
              delay);
        } else if (failedDials <= 1) {
          log.warn(
              "{} cannot connect to {} at {}: {}; retrying in {} ms",
              who,
              peer,
              overlay.peerAddress(peer),
              dialFailure.getMessage(),
              delay);
        } else {
          log.debug(
              "{} cannot connect to {}: {}; retry {} in {} ms",
              who,
              peer,
              dialFailure.getMessage(),
              failedDials,
              delay);
        }
      }
    } else if (ch == current) {
      current = null;
      info = null;
      if (!closed) {
        long delay = scheduleReconnect();
        log.info(
            "{} connection to {} closed; {}",
            who,
            peer,
            delay < 0 ? "waiting for it to dial us" : "reconnecting in " + delay + " ms");
      }
    }
    // else: a channel that lost a tie-break or was replaced: nothing depends on it
  }

  /** Schedules a redial with exponential backoff; returns the delay, or -1 if none. */
  private long scheduleReconnect() {
    if (closed
        || current != null
        || dialing != null
        || reconnectTimer != null
        || overlay.peerAddress(peer) == null) {
      return -1;
    }
    OverlayConfig config = overlay.config();
    long min = config.backoffMin().toMillis();
    long delay = Math.min(config.backoffMax().toMillis(), min << Math.min(failedDials, 20));
    failedDials++;
    reconnectTimer =
        loop.schedule(
            () -> {
              reconnectTimer = null;
              connect();
            },
            delay,
            TimeUnit.MILLISECONDS);
    return delay;
  }

  private void cancelReconnect() {
    if (reconnectTimer != null) {
      reconnectTimer.cancel(false);
      reconnectTimer = null;
    }
  }

  private void run(Runnable task, Object owned) {
    if (loop.inEventLoop()) {
      task.run();
      return;
    }
    try {
      loop.execute(task);
    } catch (RejectedExecutionException e) {
      ReferenceCountUtil.release(owned);
    }
  }
}
