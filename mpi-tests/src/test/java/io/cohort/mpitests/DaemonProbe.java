package io.cohort.mpitests;

import io.cohort.drain.Overlay;
import io.cohort.drain.OverlayConfig;
import io.cohort.drain.OverlayTls;
import io.cohort.drain.Routes;
import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.GetNodeRequest;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.RegistryGrpc;
import io.grpc.ManagedChannel;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.buffer.Unpooled;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.DataOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.util.Optional;
import java.util.concurrent.TimeUnit;

/**
 * Knocks on a daemon's port the way an intruder would and prints one line of what happened: {@code
 * KIND ADDRESS MODE RESULT}, RESULT being {@code UNREACHABLE}, {@code REFUSED ...} or {@code
 * SERVED}. Run by {@link DaemonAuthIT} on the host and inside a job's vhost (a JVM of its own, from
 * the test classes and the Cohort jar).
 *
 * <p>Usage: {@code DaemonProbe KIND ADDRESS MODE CA [CERT KEY]}; KIND {@code registry} (a
 * heartbeat), {@code agent} (GetNode) or {@code overlay:NODE} (a HELLO from "n2" to NODE's overlay,
 * with a packet for it); MODE {@code plain} (no TLS), {@code nocert} (TLS trusting CA, no
 * certificate) or {@code cert} (TLS with CERT and KEY).
 */
public final class DaemonProbe {
  private DaemonProbe() {}

  public static void main(String[] args) throws Exception {
    String kind = args[0];
    String address = args[1];
    String mode = args[2];
    File ca = new File(args[3]);
    File cert = args.length > 5 ? new File(args[4]) : null;
    File key = args.length > 5 ? new File(args[5]) : null;
    String result;
    String host = address.substring(0, address.lastIndexOf(':'));
    int port = Integer.parseInt(address.substring(address.lastIndexOf(':') + 1));
    try (Socket s = new Socket()) {
      s.connect(new InetSocketAddress(host, port), 3000);
      result = null;
    } catch (IOException e) {
      result = "UNREACHABLE " + e.getMessage();
    }
    if (result == null) {
      result =
          kind.startsWith("overlay:")
              ? overlay(kind.substring(8), host, port, mode, ca, cert, key)
              : grpc(kind, address, mode, ca, cert, key);
    }
    System.out.println(kind + " " + address + " " + mode + " " + result);
    System.out.flush();
    System.exit(0); // the overlay's and gRPC's threads
  }

  private static String grpc(String kind, String address, String mode, File ca, File cert, File key)
      throws IOException {
    NettyChannelBuilder b = NettyChannelBuilder.forTarget(address);
    switch (mode) {
      case "plain" -> b.usePlaintext();
      case "nocert" -> b.sslContext(GrpcSslContexts.forClient().trustManager(ca).build());
      default ->
          b.sslContext(GrpcSslContexts.forClient().keyManager(cert, key).trustManager(ca).build());
    }
    ManagedChannel ch = b.build();
    try {
      if (kind.equals("registry")) {
        RegistryGrpc.newBlockingStub(ch)
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .heartbeat(HeartbeatRequest.newBuilder().setNode("n1").setAddress(address).build());
      } else {
        AgentGrpc.newBlockingStub(ch)
            .withDeadlineAfter(10, TimeUnit.SECONDS)
            .getNode(GetNodeRequest.getDefaultInstance());
      }
      return "SERVED";
    } catch (StatusRuntimeException e) {
      return "REFUSED " + e.getStatus().getCode() + " " + e.getStatus().getDescription();
    } finally {
      ch.shutdownNow();
    }
  }

  private static String overlay(
      String node, String host, int port, String mode, File ca, File cert, File key)
      throws Exception {
    if (mode.equals("plain")) {
      return plainHello(host, port);
    }
    // An overlay of our own, named n2, dialing the node: it sends HELLO once TLS lets it.
    var server =
        SslContextBuilder.forServer(cert, key).trustManager(ca).clientAuth(ClientAuth.REQUIRE);
    var client = SslContextBuilder.forClient().trustManager(ca);
    if (mode.equals("cert")) {
      client.keyManager(cert, key);
    }
    Routes routes = new Routes();
    int dst = (198 << 24) | (19 << 16) | 250; // an address routed to the target node
    routes.put(dst, node);
    OverlayTls tls = new OverlayTls(server.build(), client.build(), leaf -> Optional.of(node));
    try (Overlay o =
        Overlay.start(
            OverlayConfig.defaults("n2", new InetSocketAddress(0)),
            tls,
            routes,
            (job, d, packet) -> packet.release())) {
      o.addPeer(node, new InetSocketAddress(host, port));
      o.send("job-probe", dst, Unpooled.wrappedBuffer(new byte[20]));
      long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(5);
      while (System.nanoTime() < deadline) {
        if (o.isConnected(node)) {
          return "SERVED";
        }
        Thread.sleep(50);
      }
      return "REFUSED no connection within 5 s";
    }
  }

  /** A HELLO frame of the overlay's protocol in the clear; refused if the node closes on it. */
  private static String plainHello(String host, int port) throws IOException {
    try (Socket s = new Socket(host, port)) {
      s.setSoTimeout(10_000);
      byte[] name = "n1".getBytes(StandardCharsets.UTF_8);
      DataOutputStream out = new DataOutputStream(s.getOutputStream());
      out.writeInt(1 + 1 + 1 + name.length + 8); // type, version, name, incarnation
      out.writeByte(1);
      out.writeByte(2);
      out.writeByte(name.length);
      out.write(name);
      out.writeLong(42);
      out.flush();
      InputStream in = s.getInputStream();
      byte[] buf = new byte[256];
      int n;
      int total = 0;
      while ((n = in.read(buf)) > 0) {
        total += n;
        if (total > 32 && buf[4] == 1) {
          return "SERVED (a HELLO came back)";
        }
      }
      return "REFUSED closed after " + total + " bytes";
    } catch (java.net.SocketTimeoutException e) {
      return "OPEN (neither closed nor answered in 10 s)";
    } catch (IOException e) {
      return "REFUSED " + e.getMessage();
    }
  }
}
