package io.cohort.cli;

import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.common.DaemonIdentity;
import io.cohort.drain.OverlayTls;
import io.grpc.ManagedChannel;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.netty.handler.ssl.ClientAuth;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.SslContext;
import io.netty.handler.ssl.SslContextBuilder;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.util.Set;
import java.util.function.Function;

/**
 * A daemon's side of the cluster's mutual TLS: its certificate and key ({@code NAME.crt}, {@code
 * NAME.key}) and the cluster CA ({@code ca.crt}), from one directory ({@code cohort ca issue} makes
 * them). Every daemon-to-daemon connection presents the daemon's certificate and trusts the cluster
 * CA only; the servers require a client certificate, so a peer without one of the cluster (none, or
 * another CA's) is refused in the handshake, before any call.
 *
 * <p>The directory also holds the cluster's checkpoint key ({@value CheckpointKey#FILE}), the other
 * secret every daemon of the cluster shares: it signs checkpoint records and image manifests
 * ({@link #checkpointKey}).
 *
 * <p>Contexts are built once and shared by every connection: a connection costs one handshake when
 * it opens, and gRPC keeps its connections open (one per peer), so calls cost nothing more.
 */
final class DaemonTls {
  private final Path dir;
  private final File cert;
  private final File key;
  private final File ca;
  private final SslContext grpcClient;
  private final CheckpointKey checkpointKey;

  /**
   * What does the daemons' TLS: BoringSSL through netty-tcnative, whose per-record and handshake
   * costs do not depend on the JIT having compiled the JDK's SSLEngine (a daemon makes a few calls
   * a checkpoint, too few for that); the JDK's only if the library cannot load here.
   */
  static String provider() {
    return OpenSsl.isAvailable()
        ? OpenSsl.versionString() + " (netty-tcnative)"
        : "the JDK's SSLEngine (netty-tcnative does not load: "
            + OpenSsl.unavailabilityCause()
            + ")";
  }

  private DaemonTls(Path dir, String name) throws IOException {
    this.dir = dir;
    this.cert = ClusterCa.cert(dir, name).toFile();
    this.key = ClusterCa.key(dir, name).toFile();
    this.ca = dir.resolve(ClusterCa.CA_CERT).toFile();
    this.grpcClient = GrpcSslContexts.forClient().keyManager(cert, key).trustManager(ca).build();
    this.checkpointKey = CheckpointKey.load(dir.resolve(CheckpointKey.FILE));
  }

  /**
   * The TLS of daemon {@code name} from {@code dir}, and the cluster's checkpoint key; refuses,
   * saying how to make them, when a file is missing or a key is readable by others.
   */
  static DaemonTls load(Path dir, String name) {
    Path cert = ClusterCa.cert(dir, name);
    Path key = ClusterCa.key(dir, name);
    for (Path p : new Path[] {dir.resolve(ClusterCa.CA_CERT), cert, key}) {
      if (!Files.isRegularFile(p)) {
        throw CohortException.precondition(
            "no %s: the daemons authenticate each other with certificates of the cluster's CA; "
                + "make them with `cohort ca init` (once per cluster) and `cohort ca issue %s "
                + "--address ADDR` (see docs/user-guide.md, \"Certificates\"), or give --tls DIR",
            p, name);
      }
    }
    try {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(key);
      if (perms.contains(PosixFilePermission.GROUP_READ)
          || perms.contains(PosixFilePermission.OTHERS_READ)) {
        throw CohortException.precondition(
            "%s is readable by others than its owner: `chmod 600 %s`, and issue a new "
                + "certificate if someone may have read it",
            key, key);
      }
      return new DaemonTls(dir, name);
    } catch (IOException | IllegalArgumentException e) {
      throw CohortException.precondition(
          "cannot load the certificate of %s from %s: %s", name, dir, e.getMessage());
    }
  }

  Path dir() {
    return dir;
  }

  /** The cluster's checkpoint key, from the same directory. */
  CheckpointKey checkpointKey() {
    return checkpointKey;
  }

  /** A server context for a daemon port: this daemon's certificate, a cluster client required. */
  SslContext daemonServer() throws IOException {
    return GrpcSslContexts.configure(
            SslContextBuilder.forServer(cert, key).trustManager(ca).clientAuth(ClientAuth.REQUIRE))
        .build();
  }

  /**
   * A server context for the coordinator's client API: its certificate, no client certificate asked
   * (users are not daemons; who they are is the client API's business).
   */
  SslContext clientApiServer() throws IOException {
    return GrpcSslContexts.configure(SslContextBuilder.forServer(cert, key)).build();
  }

  /**
   * Dials a daemon at HOST:PORT with this daemon's certificate; the peer's must chain to the
   * cluster CA and name HOST among its addresses.
   */
  Function<String, ManagedChannel> dialer() {
    return address -> NettyChannelBuilder.forTarget(address).sslContext(grpcClient).build();
  }

  /** The overlay's TLS: both ends with their node's certificate, the peer's naming its node. */
  OverlayTls overlay() throws IOException {
    return new OverlayTls(
        SslContextBuilder.forServer(cert, key)
            .trustManager(ca)
            .clientAuth(ClientAuth.REQUIRE)
            .protocols("TLSv1.3")
            .build(),
        SslContextBuilder.forClient()
            .keyManager(cert, key)
            .trustManager(ca)
            .protocols("TLSv1.3")
            .endpointIdentificationAlgorithm("HTTPS")
            .build(),
        leaf ->
            DaemonIdentity.of(leaf)
                .filter(d -> d.role() == DaemonIdentity.Role.AGENT)
                .map(DaemonIdentity::name));
  }
}
