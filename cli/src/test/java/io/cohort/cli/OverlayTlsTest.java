package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.DaemonIdentity;
import io.cohort.drain.Ipv4;
import io.cohort.drain.Overlay;
import io.cohort.drain.OverlayConfig;
import io.cohort.drain.OverlayTls;
import io.cohort.drain.PacketSink;
import io.cohort.drain.Routes;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.Unpooled;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real overlays on 127.0.0.1 over mutual TLS with certificates from {@link ClusterCa}: two nodes of
 * the cluster carry a packet; a node with another CA's certificate, one whose certificate names
 * another node than its HELLO, and a plain TCP peer are closed before any frame is taken.
 */
class OverlayTlsTest {
  @TempDir static Path tmp;
  static Path cluster;
  static Path other;

  private static final int B1 = Ipv4.parse("198.19.2.1");

  private final Routes routes = new Routes();
  private final List<Overlay> overlays = new ArrayList<>();
  private final List<String> delivered = new CopyOnWriteArrayList<>();

  @BeforeAll
  static void certificates() throws Exception {
    cluster = tmp.resolve("cluster");
    other = tmp.resolve("other");
    ClusterCa ca = new ClusterCa(cluster);
    ca.init();
    for (String n : List.of("n1", "n2", "n3")) {
      ca.issue(n, DaemonIdentity.Role.AGENT, List.of("127.0.0.1"));
    }
    ClusterCa stranger = new ClusterCa(other);
    stranger.init();
    stranger.issue("n1", DaemonIdentity.Role.AGENT, List.of("127.0.0.1"));
  }

  @AfterEach
  void close() {
    overlays.forEach(Overlay::close);
  }

  @Test
  void nodesOfTheClusterCarryPackets() throws Exception {
    Overlay b = start("n2", DaemonTls.load(cluster, "n2").overlay());
    Overlay a = start("n1", DaemonTls.load(cluster, "n1").overlay());
    a.addPeer("n2", b.localAddress());
    a.send("job-1", B1, packet("hello"));
    await(() -> delivered.contains("hello"));
    assertTrue(a.isConnected("n2") && b.isConnected("n1"));
  }

  @Test
  void aNodeWithAnotherCasCertificateIsRefused() throws Exception {
    Overlay b = start("n2", DaemonTls.load(cluster, "n2").overlay());
    Overlay stranger = start("n1", DaemonTls.load(other, "n1").overlay());
    stranger.addPeer("n2", b.localAddress());
    stranger.send("job-1", B1, packet("intruder"));
    assertRefused(b, stranger);
  }

  @Test
  void aNodeWhoseCertificateNamesAnotherNodeIsRefused() throws Exception {
    Overlay b = start("n2", DaemonTls.load(cluster, "n2").overlay());
    // n3's valid certificate, a HELLO saying n1.
    Overlay liar = start("n1", DaemonTls.load(cluster, "n3").overlay());
    liar.addPeer("n2", b.localAddress());
    liar.send("job-1", B1, packet("impostor"));
    assertRefused(b, liar);
  }

  @Test
  void aPlainTcpPeerIsClosedWithoutAnswer() throws Exception {
    Overlay b = start("n2", DaemonTls.load(cluster, "n2").overlay());
    try (Socket s = new Socket()) {
      s.connect(b.localAddress(), 5000);
      s.setSoTimeout(10_000);
      // A well-formed HELLO frame of the overlay's protocol, in the clear.
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      byte[] name = "n1".getBytes(StandardCharsets.UTF_8);
      out.writeInt(1 + 1 + 1 + name.length + 8); // type, version, name, incarnation
      out.writeByte(1); // HELLO
      out.writeByte(2); // the protocol's version
      out.writeByte(name.length);
      out.write(name);
      out.writeLong(42);
      out.flush();
      DataInputStream in = new DataInputStream(s.getInputStream());
      // The server speaks TLS or nothing: at most an alert, then the connection closes.
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
      boolean closed = false;
      while (!closed && System.nanoTime() < deadline) {
        try {
          if (in.read() < 0) {
            closed = true;
          }
        } catch (EOFException | java.net.SocketException e) {
          closed = true;
        }
      }
      assertTrue(closed, "the overlay closed a connection that did not speak TLS");
    } catch (IOException e) {
      // a reset is a refusal too
    }
    assertFalse(b.isConnected("n1"), "the HELLO in the clear was not taken");
  }

  private void assertRefused(Overlay server, Overlay client) throws InterruptedException {
    // The dialer retries with backoff; give it several attempts, none may get through.
    Thread.sleep(1500);
    assertFalse(server.isConnected(client.nodeName()));
    assertFalse(client.isConnected(server.nodeName()));
    assertTrue(delivered.isEmpty(), "nothing delivered: " + delivered);
  }

  private Overlay start(String name, OverlayTls tls) {
    OverlayConfig config =
        OverlayConfig.defaults(name, new InetSocketAddress("127.0.0.1", 0))
            .withBackoff(Duration.ofMillis(20), Duration.ofMillis(200));
    if (name.equals("n2")) {
      routes.put(B1, "n2");
    }
    PacketSink sink =
        (job, dst, packet) -> {
          try {
            delivered.add(packet.toString(StandardCharsets.UTF_8));
          } finally {
            packet.release();
          }
        };
    Overlay o = Overlay.start(config, tls, routes, sink);
    overlays.add(o);
    return o;
  }

  private static ByteBuf packet(String s) {
    return Unpooled.copiedBuffer(s, StandardCharsets.UTF_8);
  }

  private static void await(java.util.function.BooleanSupplier done) throws InterruptedException {
    long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
    while (!done.getAsBoolean()) {
      if (System.nanoTime() > deadline) {
        throw new AssertionError("not within 10 s");
      }
      Thread.sleep(20);
    }
  }
}
