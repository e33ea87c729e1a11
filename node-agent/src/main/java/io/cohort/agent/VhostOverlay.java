package io.cohort.agent;

import io.cohort.drain.Overlay;
import io.cohort.drain.OverlayConfig;
import io.cohort.drain.OverlayTls;
import io.cohort.drain.Recording;
import io.cohort.drain.Routes;
import io.cohort.proto.v1.JobNetworkPlan;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.PooledByteBufAllocator;
import io.netty.buffer.Unpooled;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The node's end of the overlay: a TUN device that the job routing tables send remote vhost
 * addresses to, a reader thread that hands each IP packet to the channel-drain {@link Overlay}, and
 * a sink that writes packets from other nodes back into the TUN.
 */
public final class VhostOverlay implements AutoCloseable {
  static final String TUN = "cohort-tun";

  /** The largest packet the TUN can hand over (its MTU is {@link VhostNetwork#MTU}). */
  private static final int MAX_PACKET = 65536;

  private static final Logger log = LoggerFactory.getLogger(VhostOverlay.class);

  private final String node;
  private final Tun tun;
  private final Routes routes = new Routes();
  private final Overlay overlay;
  private final Thread reader;

  /** Nodes hosting vhosts of each job, by job id. */
  private final Map<String, Set<String>> jobNodes = new ConcurrentHashMap<>();

  /** The job of each vhost address configured here (the TUN reader sees only addresses). */
  private final Map<Integer, String> jobOfAddress = new ConcurrentHashMap<>();

  /** Jobs the kernel path carries, by job id. */
  private final Map<String, KernelJob> kernelJobs = new ConcurrentHashMap<>();

  /** Markers of a cut begun and not yet sent, by job ({@link #beginCut}). */
  private final Map<String, CompletableFuture<Void>> markerGates = new ConcurrentHashMap<>();

  /** The job of each markers' address of a job the kernel path carries. */
  private final Map<Integer, String> markerJobs = new ConcurrentHashMap<>();

  private volatile boolean closed;

  /** Packets of jobs read from the TUN (single writer: the reader thread). */
  private volatile long packetsIn;

  private final java.util.concurrent.atomic.AtomicLong packetsOut =
      new java.util.concurrent.atomic.AtomicLong();

  private VhostOverlay(String node, Tun tun, InetSocketAddress listen, OverlayTls tls) {
    this.node = node;
    this.tun = tun;
    this.overlay = Overlay.start(OverlayConfig.defaults(node, listen), tls, routes, this::deliver);
    this.reader = new Thread(this::readLoop, "overlay-tun-" + node);
    this.reader.setDaemon(true);
    this.reader.start();
  }

  /**
   * Creates the TUN device in this network namespace and starts the overlay on {@code listen}, its
   * connections over mutual TLS with {@code tls} (null: plain TCP).
   */
  public static VhostOverlay start(String node, InetSocketAddress listen, OverlayTls tls)
      throws IOException {
    Tun tun = Tun.open(TUN);
    try {
      IpVhostNetwork.run("ip", "link", "set", TUN, "mtu", VhostNetwork.MTU, "up");
      Files.writeString(Path.of("/proc/sys/net/ipv4/conf/" + TUN + "/rp_filter"), "0");
      return new VhostOverlay(node, tun, listen, tls);
    } catch (IOException | RuntimeException e) {
      tun.close();
      throw e;
    }
  }

  /** Packets of jobs taken from this node's network (the TUN) since the start. */
  public long packetsIn() {
    return packetsIn;
  }

  /** IP packets put into this node's network (the TUN) since the start, markers included. */
  public long packetsOut() {
    return packetsOut.get();
  }

  /** Where the overlay listens. */
  public InetSocketAddress address() {
    return overlay.localAddress();
  }

  /**
   * The vhosts of job {@code job}, wherever they are: remote ones are routed into the TUN (in the
   * job's own routing table, from its {@code plan}) and to their node over the overlay. {@code
   * networkKey} is this incarnation's (see {@link #overlayKey}): from now on the overlay delivers
   * here only packets of the job that carry it. With {@code kernel} (the kernel path carries the
   * job's packets; null: this overlay does) the overlay learns the job's nodes and key but routes
   * nothing: it takes part only at the cut, through {@code kernel}'s diversion.
   */
  void configureJob(
      String job,
      JobNetworkPlan plan,
      List<VhostRoute> vhosts,
      String networkKey,
      KernelPath kernel) {
    boolean tunRoutes = kernel == null;
    String table = Integer.toString(plan.getTable());
    // A job (re)starts here: whatever the overlay knew of an earlier incarnation is void.
    forget(job, "reconfigured");
    overlay.setKey(job, overlayKey(networkKey));
    Set<String> nodes = new TreeSet<>();
    vhosts.forEach(v -> nodes.add(v.node()));
    jobNodes.put(job, Set.copyOf(nodes));
    Map<String, Integer> reach = new TreeMap<>();
    for (VhostRoute v : vhosts) {
      int addr = ipv4(v.address());
      routes.put(addr, v.node());
      jobOfAddress.put(addr, job);
      reach.putIfAbsent(v.node(), addr);
      if (!v.node().equals(node)) {
        String[] hp = v.overlayAddress().split(":");
        overlay.addPeer(v.node(), new InetSocketAddress(hp[0], Integer.parseInt(hp[1])));
        if (tunRoutes) {
          IpVhostNetwork.run(
              "ip", "route", "replace", v.address() + "/32", "dev", TUN, "table", table);
        }
      }
    }
    if (kernel != null) {
      int marker = ipv4(plan.getMarkerAddress());
      kernelJobs.put(job, new KernelJob(plan, kernel, marker, Map.copyOf(reach)));
      markerJobs.put(marker, job);
    }
  }

  /**
   * A job whose packets the kernel carries: its plan, the kernel path that diverts them at the cut,
   * its markers' address and, for each node, a vhost of the job there (a marker's destination).
   */
  private record KernelJob(
      JobNetworkPlan plan, KernelPath kernel, int marker, Map<String, Integer> vhostOnNode) {}

  /**
   * The overlay's form of a job's network key (the coordinator's, random per incarnation): the
   * first 8 bytes of its SHA-256, never 0, which means no key (an empty one, from a coordinator
   * that sends none: then the job's packets carry none and are checked against none, as before).
   */
  static long overlayKey(String networkKey) {
    if (networkKey.isEmpty()) {
      return 0;
    }
    try {
      byte[] d =
          MessageDigest.getInstance("SHA-256").digest(networkKey.getBytes(StandardCharsets.UTF_8));
      long key = ByteBuffer.wrap(d).getLong();
      return key == 0 ? 1 : key;
    } catch (NoSuchAlgorithmException e) {
      throw new IllegalStateException("SHA-256 is missing from this JVM", e);
    }
  }

  /** The other nodes hosting vhosts of {@code job} (empty: none, or not configured here). */
  Set<String> peersOf(String job) {
    Set<String> peers = new TreeSet<>(jobNodes.getOrDefault(job, Set.of()));
    peers.remove(node);
    return peers;
  }

  /**
   * Cuts {@code job}'s channels at {@code epoch} (see {@link Overlay#freeze}): from the return of
   * this method no packet of the job reaches this node's vhosts, and markers are on their way to
   * the peers. The future completes with what was in flight from them.
   */
  CompletableFuture<Recording> freeze(String job, long epoch) {
    if (kernelJobs.containsKey(job)) {
      CompletableFuture<Recording> recording = beginCut(job, epoch);
      markersNow(job);
      return recording;
    }
    CompletableFuture<Recording> recording = overlay.freeze(job, epoch, peersOf(job));
    awaitApplied(job, epoch);
    return recording;
  }

  /** Whether the kernel carries {@code job}'s packets here (its cut then begins before CRIU). */
  boolean kernelCarries(String job) {
    return kernelJobs.containsKey(job);
  }

  /**
   * The kernel path's cut of {@code job} at {@code epoch} begins, before CRIU freezes the job's
   * vhosts here: from the return of this method their arrivals from other nodes come to this agent
   * and are recorded (the peers' markers are still to come) or held. A datagram that reached a
   * vhost's socket before is in its image only if the vhost read it: CRIU does not save the queues
   * of UDP sockets, so the cut must not leave them anything to hold. The markers wait for {@link
   * #markersNow}: this node's vhosts may send until CRIU freezes them.
   */
  CompletableFuture<Recording> beginCut(String job, long epoch) {
    KernelJob k = kernelJobs.get(job);
    k.kernel().divert(k.plan());
    KernelMarker marker = new KernelMarker(node, epoch, overlay.key(job));
    CompletableFuture<Void> frozen = new CompletableFuture<>();
    markerGates.put(job, frozen);
    CompletableFuture<Recording> recording =
        overlay.freeze(
            job,
            epoch,
            peersOf(job),
            peer ->
                frozen.thenRun(
                    () -> sendMarker(marker.encode(k.marker(), k.vhostOnNode().get(peer)))));
    awaitApplied(job, epoch);
    return recording;
  }

  /**
   * CRIU froze the job's vhosts here: the markers leave now, through the kernel behind the packets
   * those vhosts sent before.
   */
  void markersNow(String job) {
    CompletableFuture<Void> gate = markerGates.remove(job);
    if (gate != null) {
      gate.complete(null);
    }
  }

  private void awaitApplied(String job, long epoch) {
    try {
      // CRIU waits for this answer with the job frozen: never wait for an overlay forever.
      overlay.applied(job).get(5, TimeUnit.SECONDS);
    } catch (TimeoutException e) {
      resume(job, epoch); // and lets the job's arrivals reach its vhosts again
      throw new IllegalStateException(
          "the overlay of " + node + " did not freeze job " + job + " within 5 s", e);
    } catch (ExecutionException e) {
      resume(job, epoch); // not frozen: this only lets the job's arrivals through again
      throw new IllegalStateException(
          "the overlay of " + node + " cannot freeze job " + job + ": " + e.getCause().getMessage(),
          e.getCause());
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted while freezing job " + job, e);
    }
  }

  /**
   * Delivers what the cut of {@code epoch} recorded and held, then forwards again (on the kernel
   * path: then lets the job's arrivals reach its vhosts directly again).
   */
  CompletableFuture<Void> resume(String job, long epoch) {
    markerGates.remove(job); // an abort before the freeze: these markers are never sent
    CompletableFuture<Void> done = overlay.resume(job, epoch);
    KernelJob k = kernelJobs.get(job);
    if (k == null) {
      return done;
    }
    // Not on the overlay's event loop, which must never wait for a command.
    return done.handleAsync(
        (v, e) -> {
          k.kernel().undivert(k.plan());
          return null;
        });
  }

  private void sendMarker(byte[] packet) {
    try {
      packetsOut.incrementAndGet();
      tun.write(Unpooled.wrappedBuffer(packet));
    } catch (IOException e) {
      // The peer then waits for this marker until its timeout, and the checkpoint aborts.
      log.warn("overlay {}: cannot send a marker: {}", node, e.getMessage());
    }
  }

  /** Forgets a job that is gone from this node (drops what was held for it, and its key). */
  void removeJob(String job) {
    forget(job, "removed");
  }

  private void forget(String job, String why) {
    long stale = overlay.jobStats(job).staleDropped();
    if (stale > 0) {
      // Worth knowing: a vhost of an earlier incarnation is still running somewhere.
      log.info(
          "overlay {}: job {} {}: {} packets or markers of another incarnation were dropped",
          node,
          job,
          why,
          stale);
    }
    overlay.removeJob(job);
    jobOfAddress.values().removeIf(job::equals);
    markerJobs.values().removeIf(job::equals);
    kernelJobs.remove(job);
  }

  /**
   * Writes restored in-flight packets into this node's network, where the kernel routes them to the
   * (local, just restored) vhost they are addressed to.
   */
  void injectLocal(List<byte[]> packets) throws IOException {
    for (byte[] p : packets) {
      packetsOut.incrementAndGet();
      tun.write(Unpooled.wrappedBuffer(p));
    }
  }

  /** One vhost of a job: its address, its node and that node's overlay address. */
  record VhostRoute(String address, String node, String overlayAddress) {}

  private void readLoop() {
    // One native buffer to read into; each packet then gets a pooled buffer of its own size
    // (a held or recorded packet must not pin 64 KB).
    ByteBuf buf = PooledByteBufAllocator.DEFAULT.directBuffer(MAX_PACKET, MAX_PACKET);
    try {
      while (!closed) {
        buf.clear();
        int n;
        try {
          n = tun.read(buf);
        } catch (IOException e) {
          if (!closed) {
            log.error("overlay {}: {}", node, e.getMessage());
          }
          return;
        }
        if (n < 20 || (buf.getByte(0) >> 4) != 4) {
          continue; // not IPv4
        }
        int src = buf.getInt(12);
        int dst = buf.getInt(16);
        String markerOf = markerJobs.get(src);
        if (markerOf != null) { // a peer's marker, by the kernel path
          packetsIn++;
          KernelMarker.parse(buf, n)
              .ifPresent(m -> overlay.markerArrived(m.node(), markerOf, m.key(), m.epoch()));
          continue;
        }
        String job = jobOfAddress.get(dst);
        if (job == null) {
          continue; // no job here has that address (any more)
        }
        packetsIn++; // a job's: what the kernel sends the TUN of its own (IPv6 ND) is not
        ByteBuf packet = PooledByteBufAllocator.DEFAULT.directBuffer(n, n);
        packet.writeBytes(buf, 0, n);
        try {
          String from = kernelJobs.containsKey(job) ? routes.nodeOf(src) : null;
          if (from != null && !from.equals(node)) {
            overlay.arrived(from, job, dst, packet); // diverted at the cut (kernel path)
          } else {
            overlay.send(job, dst, packet);
          }
        } catch (RuntimeException e) {
          log.debug("overlay {}: packet to {} dropped: {}", node, dst, e.getMessage());
        }
      }
    } finally {
      buf.release();
    }
  }

  private void deliver(String job, int dst, ByteBuf packet) {
    try {
      packetsOut.incrementAndGet();
      tun.write(packet);
    } catch (IOException e) {
      log.debug("overlay {}: cannot deliver a packet: {}", node, e.getMessage());
    } finally {
      packet.release();
    }
  }

  static int ipv4(String dotted) {
    String[] p = dotted.split("\\.");
    return (Integer.parseInt(p[0]) << 24)
        | (Integer.parseInt(p[1]) << 16)
        | (Integer.parseInt(p[2]) << 8)
        | Integer.parseInt(p[3]);
  }

  @Override
  public void close() {
    closed = true;
    overlay.close();
    tun.close();
  }
}
