package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.DaemonIdentity;
import io.cohort.common.DaemonPeerCheck;
import io.cohort.common.GrpcErrors;
import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.ExportImageRequest;
import io.cohort.proto.v1.GetNodeRequest;
import io.cohort.proto.v1.GetNodeResponse;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.HeartbeatResponse;
import io.cohort.proto.v1.ImageChunk;
import io.cohort.proto.v1.ListNodesRequest;
import io.cohort.proto.v1.ListNodesResponse;
import io.cohort.proto.v1.RegistryGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.netty.NettyServerBuilder;
import io.grpc.stub.StreamObserver;
import io.netty.handler.ssl.OpenSsl;
import io.netty.handler.ssl.OpenSslContext;
import io.netty.handler.ssl.ReferenceCountedOpenSslContext;
import io.netty.handler.ssl.SslContext;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real gRPC servers and clients over TLS on 127.0.0.1, with certificates made by {@link ClusterCa}
 * (openssl): the daemon ports serve only a daemon of the cluster allowed to make the call, the
 * client API any client that trusts the cluster CA.
 */
class DaemonTlsTest {
  @TempDir static Path tmp;
  static Path cluster;
  static Path other;

  private final List<Server> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final AtomicInteger served = new AtomicInteger();

  @BeforeAll
  static void certificates() throws Exception {
    cluster = tmp.resolve("cluster");
    other = tmp.resolve("other");
    ClusterCa ca = new ClusterCa(cluster);
    ca.init();
    ca.issue("coordinator", DaemonIdentity.Role.COORDINATOR, List.of("127.0.0.1"));
    ca.issue("n1", DaemonIdentity.Role.AGENT, List.of("127.0.0.1", "n1"));
    ca.issue("n2", DaemonIdentity.Role.AGENT, List.of("127.0.0.1"));
    // Another cluster's CA, issuing a certificate with the very same names.
    ClusterCa stranger = new ClusterCa(other);
    stranger.init();
    stranger.issue("n1", DaemonIdentity.Role.AGENT, List.of("127.0.0.1"));
    stranger.issue("coordinator", DaemonIdentity.Role.COORDINATOR, List.of("127.0.0.1"));
  }

  @AfterEach
  void stop() {
    channels.forEach(ManagedChannel::shutdownNow);
    servers.forEach(Server::shutdownNow);
  }

  @Test
  void keysAreTheOwnersOnlyAndCertificatesEveryones() throws Exception {
    assertEquals("rw-------", perms(cluster.resolve("ca.key")));
    assertEquals("rw-------", perms(cluster.resolve("n1.key")));
    assertEquals("rw-r--r--", perms(cluster.resolve("ca.crt")));
    assertEquals("rw-r--r--", perms(cluster.resolve("n1.crt")));
  }

  @Test
  void aLoadedKeyMustBeTheOwnersOnly() throws Exception {
    Path dir = tmp.resolve("loose");
    new ClusterCa(cluster).issue("n3", DaemonIdentity.Role.AGENT, List.of("127.0.0.1"), dir);
    DaemonTls.load(dir, "n3");
    Files.setPosixFilePermissions(
        dir.resolve("n3.key"), PosixFilePermissions.fromString("rw-r--r--"));
    var e = assertThrows(RuntimeException.class, () -> DaemonTls.load(dir, "n3"));
    assertTrue(e.getMessage().contains("chmod 600"), e.getMessage());
    var missing = assertThrows(RuntimeException.class, () -> DaemonTls.load(dir, "n9"));
    assertTrue(missing.getMessage().contains("cohort ca issue n9"), missing.getMessage());
  }

  /**
   * Every daemon context is BoringSSL's (netty-tcnative): the JDK's SSLEngine, seldom compiled in a
   * daemon, cost a few milliseconds on each phase of a checkpoint and on each TCP client's
   * handshake (docs/design.md).
   */
  @Test
  void theDaemonsTlsIsBoringSsl() throws Exception {
    assertTrue(
        OpenSsl.isAvailable(), "netty-tcnative does not load: " + OpenSsl.unavailabilityCause());
    DaemonTls tls = daemon("n1");
    for (SslContext c :
        List.of(
            tls.daemonServer(),
            tls.clientApiServer(),
            tls.overlay().server(),
            tls.overlay().client())) {
      assertTrue(
          c instanceof OpenSslContext || c instanceof ReferenceCountedOpenSslContext,
          c.getClass().getName());
    }
    assertTrue(DaemonTls.provider().contains("netty-tcnative"), DaemonTls.provider());
  }

  @Test
  void theRegistryServesAnAgentOfTheClusterForItsOwnNodeOnly() throws Exception {
    int port = registry();
    RegistryGrpc.RegistryBlockingStub n1 = registryStub(daemon("n1").dialer(), port);
    assertEquals(7, n1.heartbeat(beat("n1")).getIntervalMs());
    assertEquals(1, served.get());

    StatusRuntimeException other =
        assertThrows(StatusRuntimeException.class, () -> n1.heartbeat(beat("n2")));
    assertEquals(Status.Code.PERMISSION_DENIED, other.getStatus().getCode());
    assertTrue(other.getStatus().getDescription().contains("may not speak for node n2"));

    var coordinator = registryStub(daemon("coordinator").dialer(), port);
    StatusRuntimeException role =
        assertThrows(StatusRuntimeException.class, () -> coordinator.heartbeat(beat("n1")));
    assertEquals(Status.Code.PERMISSION_DENIED, role.getStatus().getCode());
    assertEquals(2, served.get(), "the service saw n1's two calls only");
  }

  @Test
  void theRegistryRefusesAPeerWithoutACertificateOfTheClusterBeforeAnyCall() throws Exception {
    int port = registry();
    // Well-formed calls, trusting the right CA, but presenting no certificate ...
    refused(registryStub(noCertificate(), port));
    // ... another CA's certificate with the same names ...
    refused(registryStub(DaemonTls.load(other, "n1").dialer(), port));
    // ... or no TLS at all.
    refused(registryStub(a -> keep(NettyChannelBuilder.forTarget(a).usePlaintext().build()), port));
    assertEquals(0, served.get(), "no call reached the service");
  }

  @Test
  void anAgentServesTheCoordinatorAndOtherAgentsOnlyTheirImages() throws Exception {
    Server s =
        start(
            NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .sslContext(daemon("n2").daemonServer())
                .addService(
                    ServerInterceptors.intercept(new Agent(), DaemonPeerCheck.agentService())));
    String at = "127.0.0.1:" + s.getPort();
    var coordinator = AgentGrpc.newBlockingStub(keep(daemon("coordinator").dialer().apply(at)));
    assertEquals("n2", call(coordinator).getNode());
    var n1 = AgentGrpc.newBlockingStub(keep(daemon("n1").dialer().apply(at)));
    StatusRuntimeException denied = assertThrows(StatusRuntimeException.class, () -> call(n1));
    assertEquals(Status.Code.PERMISSION_DENIED, denied.getStatus().getCode());
    assertTrue(
        n1.withDeadlineAfter(10, TimeUnit.SECONDS)
            .exportImage(ExportImageRequest.newBuilder().setCheckpointId("1.1").build())
            .hasNext());
    for (var channel :
        List.of(
            noCertificate().apply(at),
            DaemonTls.load(other, "coordinator").dialer().apply(at),
            NettyChannelBuilder.forTarget(at).usePlaintext().build())) {
      keep(channel);
      StatusRuntimeException e =
          assertThrows(
              StatusRuntimeException.class, () -> call(AgentGrpc.newBlockingStub(channel)));
      assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
      assertTrue(!GrpcErrors.answered(e), "refused by the transport, not by the service");
    }
    assertEquals(2, served.get(), "only the coordinator's call and n1's export were served");
  }

  /** The native programs, built by `make -C native` before the Java tests (`cohort test`). */
  private static final Path NATIVE =
      Path.of(System.getProperty("cohort.native", "../native/build")).toAbsolutePath();

  @Test
  void theClientApiServesTheCliThatTrustsTheClusterCaWithoutACertificate() throws Exception {
    Server s =
        start(
            NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .sslContext(daemon("coordinator").clientApiServer())
                .addService(new Api()));
    String at = "127.0.0.1:" + s.getPort();
    // The CLI's own path: its TLS is native/'s cohort-tls-dial.
    cliDialing(at, cluster).listNodes(ListNodesRequest.getDefaultInstance());
    // A client that trusts another CA does not take this coordinator for its own, and says so.
    String why = refusedDialing(at, other);
    assertTrue(why.contains("is not the cluster's coordinator"), why);
    assertTrue(why.contains("unable to get local issuer certificate"), why);
    // Nor does one that dials it by a name its certificate does not carry (it names 127.0.0.1).
    why = refusedDialing("localhost:" + s.getPort(), cluster);
    assertTrue(why.contains("(its certificate: hostname mismatch)"), why);
    // A daemons' port is not the client API: it wants a certificate the CLI does not have.
    why = refusedDialing("127.0.0.1:" + registry(), cluster);
    assertTrue(why.contains("it is a daemons' port"), why);
    assertEquals(1, served.get());
  }

  @Test
  void theFirstCallGoesWithTheCredentialTheDialerMadeOnce() throws Exception {
    String at = clientApiWithMunge();
    // The CLI's own credentials would come from a munged that is not there: only the one made by
    // cohort-tls-dial, with the real munged, can get the first call through.
    Munge absent = new Munge(tmp.resolve("no-munged.socket").toString());
    CohortGrpc.CohortBlockingStub stub = cliWithCredentials(at, Munge.system(), absent);
    stub.listNodes(ListNodesRequest.getDefaultInstance());
    assertEquals(1, served.get());
    // It is good for that call only: the next one needs a credential of the CLI's own.
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> stub.listNodes(ListNodesRequest.getDefaultInstance()));
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode());
    assertTrue(
        e.getStatus().getDescription().contains("munged must run on this machine"),
        e.getStatus().getDescription());
    assertEquals(1, served.get());
  }

  @Test
  void aConnectionDialledAheadThatFailsFailsTheFirstCallInTheProgramsWords() throws Exception {
    String at = clientApiWithMunge();
    // A CLI that trusts another CA: the connection begun ahead fails on its own thread, before
    // any call, and gives the first call the program's verdict, not a bare broken pipe.
    TlsDialer dialer = TlsDialer.to(at, NATIVE, other.resolve("ca.crt"));
    String payload = Munge.callPayload(CohortGrpc.getListNodesMethod().getFullMethodName());
    ExecutionException failed =
        assertThrows(
            ExecutionException.class,
            () -> dialer.dialAhead(Munge.system(), payload).get(10, TimeUnit.SECONDS));
    assertTrue(failed.getCause() instanceof TlsDialer.Failed f && f.wrongServer, failed.toString());
    // No credential was made for a server that is not the cluster's: the first call's is "".
    assertEquals("", dialer.credentialFor(payload).get(10, TimeUnit.SECONDS));
    CohortGrpc.CohortBlockingStub stub =
        MungeCredentials.overTlsDialer(Munge.system(), dialer)
            .attachTo(CohortGrpc.newBlockingStub(keep(Cli.channel(dialer))))
            .withDeadlineAfter(10, TimeUnit.SECONDS);
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> stub.listNodes(ListNodesRequest.getDefaultInstance()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    String why = Cli.message(e);
    assertTrue(why.contains("is not the cluster's coordinator"), why);
    assertEquals(0, served.get());
  }

  @Test
  void withoutTheDialersCredentialTheCliMakesItsOwn() throws Exception {
    String at = clientApiWithMunge();
    // cohort-tls-dial cannot reach munged: it says so with an empty line, and the CLI runs
    // `munge` for that call as for the others.
    Munge absent = new Munge(tmp.resolve("no-munged.socket").toString());
    CohortGrpc.CohortBlockingStub stub = cliWithCredentials(at, absent, Munge.system());
    stub.listNodes(ListNodesRequest.getDefaultInstance());
    stub.listNodes(ListNodesRequest.getDefaultInstance());
    assertEquals(2, served.get());
  }

  /** The client API over TLS on a free port, each call checked with this machine's munged. */
  private String clientApiWithMunge() throws Exception {
    MungeTest.mungedRuns();
    MungeAuthenticator auth =
        new MungeAuthenticator(
            Munge.system(), PeerIdentity.system(), "use the Unix socket", System::nanoTime);
    Server s =
        start(
            NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .sslContext(daemon("coordinator").clientApiServer())
                .addService(ServerInterceptors.intercept(new Api(), auth)));
    return "127.0.0.1:" + s.getPort();
  }

  /**
   * The CLI's stub to {@code at} as a command whose first call is ListNodes makes it: the dialer's
   * program makes that call's credential with {@code dialerMunge}, the CLI the others with {@code
   * cliMunge}.
   */
  private CohortGrpc.CohortBlockingStub cliWithCredentials(
      String at, Munge dialerMunge, Munge cliMunge) {
    TlsDialer dialer = TlsDialer.to(at, NATIVE, cluster.resolve("ca.crt"));
    dialer.dialAhead(
        dialerMunge, Munge.callPayload(CohortGrpc.getListNodesMethod().getFullMethodName()));
    return MungeCredentials.overTlsDialer(cliMunge, dialer)
        .attachTo(CohortGrpc.newBlockingStub(keep(Cli.channel(dialer))))
        .withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  /** The CLI's stub to {@code at} over TCP, trusting the CA in {@code caDir}. */
  private CohortGrpc.CohortBlockingStub cliDialing(String at, Path caDir) {
    return CohortGrpc.newBlockingStub(
            keep(Cli.channel(TlsDialer.to(at, NATIVE, caDir.resolve("ca.crt")))))
        .withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  /** What the CLI tells its user when a call to {@code at} fails as UNAVAILABLE. */
  private String refusedDialing(String at, Path caDir) {
    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class,
            () -> cliDialing(at, caDir).listNodes(ListNodesRequest.getDefaultInstance()));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode());
    return Cli.message(e);
  }

  private static String perms(Path p) throws Exception {
    return PosixFilePermissions.toString(Files.getPosixFilePermissions(p));
  }

  private static DaemonTls daemon(String name) {
    return DaemonTls.load(cluster, name);
  }

  private static HeartbeatRequest beat(String node) {
    return HeartbeatRequest.newBuilder().setNode(node).setAddress("127.0.0.1:1").build();
  }

  private static GetNodeResponse call(AgentGrpc.AgentBlockingStub stub) {
    return stub.withDeadlineAfter(10, TimeUnit.SECONDS)
        .getNode(GetNodeRequest.getDefaultInstance());
  }

  private void refused(RegistryGrpc.RegistryBlockingStub stub) {
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, () -> stub.heartbeat(beat("n1")));
    assertEquals(Status.Code.UNAVAILABLE, e.getStatus().getCode(), e.toString());
  }

  /** A client that checks the server against the cluster CA and presents no certificate. */
  private java.util.function.Function<String, ManagedChannel> noCertificate() throws Exception {
    var ctx = GrpcSslContexts.forClient().trustManager(cluster.resolve("ca.crt").toFile()).build();
    return a -> keep(NettyChannelBuilder.forTarget(a).sslContext(ctx).build());
  }

  private int registry() throws Exception {
    return start(
            NettyServerBuilder.forAddress(new InetSocketAddress("127.0.0.1", 0))
                .sslContext(daemon("coordinator").daemonServer())
                .addService(
                    ServerInterceptors.intercept(new Registry(), DaemonPeerCheck.registry())))
        .getPort();
  }

  private RegistryGrpc.RegistryBlockingStub registryStub(
      java.util.function.Function<String, ManagedChannel> dial, int port) {
    return RegistryGrpc.newBlockingStub(keep(dial.apply("127.0.0.1:" + port)))
        .withDeadlineAfter(10, TimeUnit.SECONDS);
  }

  private Server start(NettyServerBuilder b) throws Exception {
    Server s = b.build().start();
    servers.add(s);
    return s;
  }

  private ManagedChannel keep(ManagedChannel c) {
    channels.add(c);
    return c;
  }

  /** The registry's adapter in miniature: the same node check, a fixed answer. */
  private final class Registry extends RegistryGrpc.RegistryImplBase {
    @Override
    public void heartbeat(HeartbeatRequest req, StreamObserver<HeartbeatResponse> out) {
      served.incrementAndGet();
      GrpcErrors.unary(
          out,
          () -> {
            DaemonPeerCheck.requireNode(req.getNode());
            return HeartbeatResponse.newBuilder().setIntervalMs(7).build();
          });
    }
  }

  private final class Agent extends AgentGrpc.AgentImplBase {
    @Override
    public void getNode(GetNodeRequest req, StreamObserver<GetNodeResponse> out) {
      served.incrementAndGet();
      out.onNext(GetNodeResponse.newBuilder().setNode("n2").build());
      out.onCompleted();
    }

    @Override
    public void exportImage(ExportImageRequest req, StreamObserver<ImageChunk> out) {
      served.incrementAndGet();
      out.onNext(ImageChunk.newBuilder().setPath("manifest.json").build());
      out.onCompleted();
    }
  }

  private final class Api extends CohortGrpc.CohortImplBase {
    @Override
    public void listNodes(ListNodesRequest req, StreamObserver<ListNodesResponse> out) {
      served.incrementAndGet();
      out.onNext(ListNodesResponse.getDefaultInstance());
      out.onCompleted();
    }
  }
}
