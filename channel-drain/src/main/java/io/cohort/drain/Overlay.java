package io.cohort.drain;

import io.netty.bootstrap.Bootstrap;
import io.netty.bootstrap.ServerBootstrap;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import io.netty.channel.Channel;
import io.netty.channel.ChannelFuture;
import io.netty.channel.ChannelOption;
import io.netty.channel.EventLoop;
import io.netty.channel.EventLoopGroup;
import io.netty.channel.group.ChannelGroup;
import io.netty.channel.group.DefaultChannelGroup;
import io.netty.channel.nio.NioEventLoopGroup;
import io.netty.channel.socket.nio.NioServerSocketChannel;
import io.netty.channel.socket.nio.NioSocketChannel;
import io.netty.handler.codec.LengthFieldPrepender;
import io.netty.util.concurrent.DefaultThreadFactory;
import io.netty.util.concurrent.EventExecutor;
import io.netty.util.concurrent.GlobalEventExecutor;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Consumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The packet overlay of one node: carries the IP packets of jobs between vhosts on different nodes
 * over one TCP connection per node pair, and drains the channels of a job at each checkpoint epoch
 * with Chandy-Lamport markers.
 *
 * <h2>Sending</h2>
 *
 * {@link #send} routes a packet by destination address ({@link Routes}): to the local {@link
 * PacketSink} if this node hosts it, otherwise to the owning node's connection, which is opened on
 * demand (dial) and redialed with backoff if it drops. While a peer is not connected (or its
 * channel not writable) its packets wait in a bounded queue; beyond {@link
 * OverlayConfig#queueLimit()} the oldest is dropped and counted — IP may drop. Exactly one
 * connection per node pair is kept; see {@link PeerConnection} for the rule (the one dialed by the
 * lower node name wins).
 *
 * <h2>Draining at a checkpoint</h2>
 *
 * {@link #freeze} stops delivering the job's packets and sends MARKER(job, epoch) to every peer
 * hosting its vhosts. From then on, per peer: packets of the job that arrive before that peer's
 * marker were in flight at the cut and are <b>recorded</b> (copied, keyed by destination); packets
 * after the marker belong to the next epoch and are <b>held</b>, as are packets from this node's
 * own TUN for local vhosts. The returned future completes with the {@link Recording} once every
 * expected marker arrived. {@link #resume} delivers the recorded packets, then the held ones, then
 * resumes delivery. Other jobs are never affected.
 *
 * <h2>Incarnations</h2>
 *
 * A job may have a network key on this node ({@link #setKey}; 0, the default, is none): the packets
 * and markers it sends carry it, and packets and markers of the job from peers that carry another
 * are dropped and counted ({@link JobStats#staleDropped}). A new incarnation of a job gets a new
 * key, so that a vhost of an earlier one, left running on a node that was cut off and comes back,
 * cannot reach it.
 *
 * <h2>Threads</h2>
 *
 * Every method may be called from any thread and none blocks, except {@link #start} and {@link
 * #close}, which must not be called on an overlay event loop. Per-connection state lives on the
 * channel's event loop, per-peer state on the peer's loop ({@link PeerConnection}), per-job state
 * on the job's loop ({@link JobDrain}); the shared maps are concurrent.
 */
public final class Overlay implements AutoCloseable {

  private static final Logger log = LoggerFactory.getLogger(Overlay.class);

  private final OverlayConfig config;
  private final OverlayTls tls; // null: plain TCP (tests, a single node)
  private final String who;
  private final long incarnation = ThreadLocalRandom.current().nextLong();
  private final Routes routes;
  private final PacketSink sink;
  private final EventLoopGroup boss;
  private final EventLoopGroup workers;
  private final FrameCodec codec;
  private final LengthFieldPrepender framePrepender = FrameCodec.newFramePrepender();
  private final ChannelGroup connections = new DefaultChannelGroup(GlobalEventExecutor.INSTANCE);
  private final ConcurrentHashMap<String, InetSocketAddress> peerAddresses =
      new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, PeerConnection> peers = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, JobDrain> jobs = new ConcurrentHashMap<>();
  private final ConcurrentHashMap<String, Long> keys = new ConcurrentHashMap<>();
  private final AtomicLong unroutable = new AtomicLong();
  private final AtomicBoolean closed = new AtomicBoolean();
  private Channel server;

  private Overlay(OverlayConfig config, OverlayTls tls, Routes routes, PacketSink sink) {
    this.config = config;
    this.tls = tls;
    this.who = "overlay " + config.nodeName() + ":";
    this.routes = Objects.requireNonNull(routes, "routes");
    this.sink = Objects.requireNonNull(sink, "sink");
    this.codec = new FrameCodec(who);
    this.boss =
        new NioEventLoopGroup(
            1, new DefaultThreadFactory("overlay-" + config.nodeName() + "-accept"));
    this.workers =
        new NioEventLoopGroup(
            config.ioThreads(), new DefaultThreadFactory("overlay-" + config.nodeName()));
  }

  /**
   * Starts an overlay listening on {@code config.listen()} (waits until bound).
   *
   * @param routes which node hosts each vhost address (read on every send)
   * @param sink where packets for this node's vhosts go
   */
  public static Overlay start(OverlayConfig config, Routes routes, PacketSink sink) {
    return start(config, null, routes, sink);
  }

  /**
   * As {@link #start(OverlayConfig, Routes, PacketSink)}, every connection (accepted and dialed)
   * over mutual TLS with {@code tls} (null: plain TCP).
   */
  public static Overlay start(
      OverlayConfig config, OverlayTls tls, Routes routes, PacketSink sink) {
    Overlay overlay = new Overlay(config, tls, routes, sink);
    try {
      overlay.bind();
    } catch (RuntimeException e) {
      overlay.close();
      throw e;
    }
    return overlay;
  }

  private void bind() {
    ServerBootstrap b =
        new ServerBootstrap()
            .group(boss, workers)
            .channel(NioServerSocketChannel.class)
            .option(ChannelOption.SO_REUSEADDR, true)
            .childOption(ChannelOption.TCP_NODELAY, true)
            .childOption(ChannelOption.SO_KEEPALIVE, true)
            .childHandler(new OverlayChannelInitializer(this, null, null));
    server = b.bind(config.listen()).syncUninterruptibly().channel();
    log.info("{} listening on {}", who, server.localAddress());
  }

  /** Opens a channel to {@code peer}, registered on {@code loop}. */
  ChannelFuture dial(EventLoop loop, String peer, InetSocketAddress address) {
    log.debug("{} dialing {} at {}", who, peer, address);
    return new Bootstrap()
        .group(loop)
        .channel(NioSocketChannel.class)
        .option(ChannelOption.TCP_NODELAY, true)
        .option(ChannelOption.SO_KEEPALIVE, true)
        .option(ChannelOption.CONNECT_TIMEOUT_MILLIS, (int) config.connectTimeout().toMillis())
        .handler(new OverlayChannelInitializer(this, peer, address))
        .connect(address);
  }

  // ---- configuration ------------------------------------------------------------------

  public String nodeName() {
    return config.nodeName();
  }

  /** The address the overlay listens on (with the actual port if the configured one was 0). */
  public InetSocketAddress localAddress() {
    return (InetSocketAddress) server.localAddress();
  }

  /** Where {@code node}'s overlay listens; needed to dial it (a node may also just dial us). */
  public void addPeer(String node, InetSocketAddress address) {
    if (node.equals(nodeName())) {
      return;
    }
    peerAddresses.put(node, Objects.requireNonNull(address, "address"));
  }

  /** Forgets {@code node}: closes its connection and drops its queued packets. */
  public void removePeer(String node) {
    peerAddresses.remove(node);
    PeerConnection p = peers.remove(node);
    if (p != null) {
      p.close();
    }
  }

  /**
   * Sets the network key of {@code jobId} on this node (0: none): from now on its packets and
   * markers to peers carry it, and only those from peers that carry it are delivered and honoured.
   * Frames already handed to a peer's queue keep the key they were sent with.
   */
  public void setKey(String jobId, long key) {
    if (key == 0) {
      keys.remove(jobId);
    } else {
      keys.put(jobId, key);
    }
  }

  /** The network key of {@code jobId} on this node (0: none). */
  public long key(String jobId) {
    return keys.getOrDefault(jobId, 0L);
  }

  // ---- data path ----------------------------------------------------------------------

  /**
   * Sends one IP packet of {@code jobId} to the vhost at {@code dstAddress}; takes ownership of
   * {@code packet}. Unroutable packets (no route, overlay closed) are dropped and counted.
   *
   * @throws IllegalArgumentException if the packet cannot fit in a frame (it is released)
   */
  public void send(String jobId, int dstAddress, ByteBuf packet) {
    if (closed.get()) {
      packet.release();
      unroutable.incrementAndGet();
      return;
    }
    int max = FrameCodec.maxPayload(jobId);
    if (packet.readableBytes() > max) {
      int size = packet.readableBytes();
      packet.release();
      throw new IllegalArgumentException(
          "packet of "
              + size
              + " bytes for job "
              + jobId
              + " exceeds the largest frame payload, "
              + max
              + " bytes");
    }
    String node = routes.nodeOf(dstAddress);
    if (node == null) {
      packet.release();
      if (unroutable.getAndIncrement() == 0) {
        log.warn(
            "{} no route to {} (job {}); dropping such packets",
            who,
            Ipv4.format(dstAddress),
            jobId);
      }
    } else if (node.equals(nodeName())) {
      drain(jobId).onLocalPacket(dstAddress, packet);
    } else {
      peer(node).send(new Frame.Packet(jobId, key(jobId), dstAddress, packet));
    }
  }

  /**
   * Freezes {@code jobId} at {@code epoch}: stops delivering its packets to the sink and sends
   * MARKER(job, epoch) to each of {@code peerNodes} (the other nodes hosting vhosts of the job;
   * this node's own name is ignored). Returns the recording of the packets that were in flight from
   * those peers, complete when all their markers arrived. It fails if the job is resumed first, if
   * the job is frozen at another epoch, or if {@code epoch} is not after the job's last one.
   * Idempotent for the same epoch. Dependent stages run on an overlay event loop: don't block in
   * them.
   */
  public CompletableFuture<Recording> freeze(String jobId, long epoch, Set<String> peerNodes) {
    return freeze(
        jobId,
        epoch,
        peerNodes,
        node -> peer(node).sendMarker(new Frame.Marker(jobId, key(jobId), epoch)));
  }

  /**
   * {@link #freeze(String, long, Set)}, with the marker to each peer sent by {@code sendMarker}
   * instead of on the overlay's connection: when the job's packets travel another way (the kernel
   * path), its markers must follow them there. Runs on an overlay event loop, once the job is
   * frozen; must not block.
   */
  public CompletableFuture<Recording> freeze(
      String jobId, long epoch, Set<String> peerNodes, Consumer<String> sendMarker) {
    Set<String> others = new TreeSet<>(peerNodes);
    others.remove(nodeName());
    return drain(jobId).freeze(epoch, others, () -> others.forEach(sendMarker));
  }

  /**
   * A packet of {@code jobId} from {@code peer} that came another way than the overlay's connection
   * (the kernel path) and was turned to this node's agent, as it is while the job is frozen here:
   * it is recorded (before the peer's marker) or held like one from the connection. Takes ownership
   * of {@code packet}.
   */
  public void arrived(String peer, String jobId, int dstAddress, ByteBuf packet) {
    drain(jobId).onRemotePacket(peer, new Frame.Packet(jobId, key(jobId), dstAddress, packet));
  }

  /** MARKER(job, epoch) from {@code peer} that came the same other way (see {@link #arrived}). */
  public void markerArrived(String peer, String jobId, long markerKey, long epoch) {
    drain(jobId).onMarker(peer, markerKey, epoch);
  }

  /**
   * Completes once every call made so far for {@code jobId} has taken effect: after {@code
   * freeze(...)} then {@code applied(job).join()}, no packet of the job reaches the sink until it
   * is resumed (whereas the future {@link #freeze} returns waits for markers).
   */
  public CompletableFuture<Void> applied(String jobId) {
    return drain(jobId).applied();
  }

  /**
   * Resumes {@code jobId} frozen at {@code epoch}: re-injects its recorded packets (arrival order),
   * then its held packets, into the sink, then delivers normally again. Idempotent.
   */
  public CompletableFuture<Void> resume(String jobId, long epoch) {
    CompletableFuture<Void> done = drain(jobId).resume(epoch);
    peers.values().forEach(p -> p.markerDone(jobId, epoch));
    return done;
  }

  /**
   * Injects restored in-flight packets of {@code jobId} (from a checkpoint's recordings) on
   * restart: those for local vhosts go to the sink in list order, whatever the job's phase; others
   * are sent to the node now hosting them (per {@link Routes}).
   */
  public CompletableFuture<Void> inject(String jobId, List<RecordedPacket> packets) {
    List<RecordedPacket> local = new ArrayList<>();
    for (RecordedPacket p : packets) {
      String node = routes.nodeOf(p.dstAddress());
      if (nodeName().equals(node)) {
        local.add(p);
      } else {
        send(jobId, p.dstAddress(), Unpooled.wrappedBuffer(p.data()));
      }
    }
    return drain(jobId).inject(local);
  }

  /**
   * Forgets {@code jobId} (it ended): drops its held packets, fails a pending recording and forgets
   * its network key. A later packet of the job starts afresh, as never frozen.
   */
  public void removeJob(String jobId) {
    keys.remove(jobId);
    JobDrain d = jobs.remove(jobId);
    if (d != null) {
      d.close();
    }
    peers.values().forEach(p -> p.forgetMarker(jobId));
  }

  // ---- observation --------------------------------------------------------------------

  /** Whether a connection to {@code node} is established now. */
  public boolean isConnected(String node) {
    return connection(node).isPresent();
  }

  /** The connection to {@code node}, if established. */
  public Optional<ConnectionInfo> connection(String node) {
    PeerConnection p = peers.get(node);
    return Optional.ofNullable(p == null ? null : p.info());
  }

  /** Open TCP connections (established or not), to help check there is one per peer. */
  public int openConnections() {
    return connections.size();
  }

  /** Counters of {@code jobId} on this node. */
  public JobStats jobStats(String jobId) {
    JobDrain d = jobs.get(jobId);
    return d == null ? new JobStats(false, -1, 0, 0, 0, 0, 0) : d.stats();
  }

  /** Packets dropped so far: queue overflow towards peers plus unroutable packets. */
  public long droppedPackets() {
    long n = unroutable.get();
    for (PeerConnection p : peers.values()) {
      n += p.dropped();
    }
    return n;
  }

  /** Channels closed so far because another channel to the same peer won the tie-break. */
  public long duplicateConnectionsClosed() {
    long n = 0;
    for (PeerConnection p : peers.values()) {
      n += p.duplicatesClosed();
    }
    return n;
  }

  // ---- lifecycle ----------------------------------------------------------------------

  /**
   * Closes every connection, drops queued and held packets, fails pending recordings, and shuts the
   * event loops down gracefully (waits up to a few seconds). Idempotent. Must not be called on an
   * overlay event loop.
   */
  @Override
  public void close() {
    if (!closed.compareAndSet(false, true)) {
      return;
    }
    for (EventExecutor e : workers) {
      if (e.inEventLoop()) {
        throw new IllegalStateException(who + " close() called on an overlay event loop");
      }
    }
    log.info("{} closing", who);
    if (server != null) {
      server.close().awaitUninterruptibly(2, TimeUnit.SECONDS);
    }
    peers.values().forEach(PeerConnection::close);
    jobs.values().forEach(JobDrain::close);
    connections.close().awaitUninterruptibly(2, TimeUnit.SECONDS);
    workers.shutdownGracefully(0, 2, TimeUnit.SECONDS);
    boss.shutdownGracefully(0, 2, TimeUnit.SECONDS);
    workers.terminationFuture().awaitUninterruptibly(5, TimeUnit.SECONDS);
    boss.terminationFuture().awaitUninterruptibly(5, TimeUnit.SECONDS);
    log.info("{} closed", who);
  }

  // ---- for the package ------------------------------------------------------------------

  String who() {
    return who;
  }

  /** The overlay's TLS, or null for plain TCP. */
  OverlayTls tls() {
    return tls;
  }

  OverlayConfig config() {
    return config;
  }

  Frame.Hello hello() {
    return new Frame.Hello(nodeName(), incarnation);
  }

  FrameCodec codec() {
    return codec;
  }

  LengthFieldPrepender framePrepender() {
    return framePrepender;
  }

  InetSocketAddress peerAddress(String node) {
    return peerAddresses.get(node);
  }

  /** The event loop that accepts connections (tests pause it to make two dials cross). */
  EventLoopGroup acceptGroup() {
    return boss;
  }

  /** Every open overlay channel of this node (tests reach into them). */
  ChannelGroup connections() {
    return connections;
  }

  void track(Channel ch) {
    connections.add(ch);
  }

  PeerConnection peer(String node) {
    return peers.computeIfAbsent(node, n -> new PeerConnection(this, n, workers.next()));
  }

  void onPacket(String peer, Frame.Packet packet) {
    drain(packet.jobId()).onRemotePacket(peer, packet);
  }

  void onMarker(String peer, Frame.Marker marker) {
    drain(marker.jobId()).onMarker(peer, marker.key(), marker.epoch());
  }

  private JobDrain drain(String jobId) {
    return jobs.computeIfAbsent(
        jobId,
        id -> new JobDrain(who, id, workers.next(), sink, config.heldLimit(), () -> key(id)));
  }
}
