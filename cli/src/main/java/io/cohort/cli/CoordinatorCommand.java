package io.cohort.cli;

import io.cohort.common.DaemonPeerCheck;
import io.cohort.common.JobInput;
import io.cohort.coordinator.BarrierConfig;
import io.cohort.coordinator.CohortGrpcService;
import io.cohort.coordinator.Coordinator;
import io.cohort.coordinator.NodeLossConfig;
import io.cohort.coordinator.RegistryGrpcService;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.Callable;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "coordinator",
    mixinStandardHelpOptions = true,
    description = {
      "Run the coordinator daemon: the client API for `cohort --coordinator`, and "
          + "the registry that node agents send their heartbeats to.",
      "Runs until SIGTERM or SIGINT. `cohort cluster up` starts one for the local cluster."
    })
final class CoordinatorCommand implements Callable<Integer> {
  static final long HEARTBEAT_MS = 1000;

  /** The name in the coordinator's certificate (and of its files in the TLS directory). */
  static final String COORDINATOR_NAME = "coordinator";

  @Option(
      names = "--listen",
      required = true,
      paramLabel = "HOST:PORT",
      description = "address to serve on")
  String listen;

  @Option(
      names = "--home",
      paramLabel = "DIR",
      description = "catalog directory (default: $COHORT_HOME/coordinator)")
  Path home;

  @Option(
      names = "--image-policy",
      paramLabel = "POLICY",
      defaultValue = "partner",
      description =
          "where jobs keep their checkpoint images when they do not say (`run --images`): "
              + "partner (default: also copied to another node after each commit, so losing one "
              + "node loses no checkpoint) or none (only on the node that wrote them)")
  String imagePolicy;

  @Option(
      names = "--copy-rate",
      paramLabel = "SIZE",
      description =
          "most bytes per second a partner copy reads, e.g. 200M (default: no limit), to leave "
              + "the network to the jobs")
  String copyRate;

  @Option(
      names = "--dead-after",
      paramLabel = "DURATION",
      description =
          "declare a node dead on its own once it has been down this long, e.g. 10m (default: "
              + "only by hand, `cohort nodes fence NODE`)")
  String deadAfter;

  @Option(
      names = "--vhost-pool",
      paramLabel = "CIDR",
      defaultValue = Coordinator.DEFAULT_VHOST_POOL,
      description =
          "the addresses jobs of several vhosts get theirs from, an IPv4 block from /8 to /28 "
              + "(default: ${DEFAULT-VALUE}); each running job has a block of it sized to its "
              + "vhosts, at least 16 addresses")
  String vhostPool;

  @Option(
      names = "--agent-listen",
      paramLabel = "HOST:PORT",
      description =
          "address to serve the registry on, the port agents send their heartbeats to (mutual "
              + "TLS: agents only; default: --listen's host, its port + 1)")
  String agentListen;

  @Option(
      names = "--tls",
      paramLabel = "DIR",
      description =
          "where the coordinator's certificate and key (coordinator.crt, coordinator.key), "
              + "the cluster CA's certificate (ca.crt) and the cluster's checkpoint key "
              + "(checkpoint.key) are (default: $COHORT_HOME/tls); see `cohort ca`")
  Path tlsDir;

  @Override
  public Integer call() throws Exception {
    Daemons.logAtInfo();
    Logger log = LoggerFactory.getLogger("coordinator");
    Path cohortHome = Embedded.Settings.fromEnvironment().home();
    Path dir = home != null ? home : cohortHome.resolve("coordinator");
    DaemonTls tls =
        DaemonTls.load(tlsDir != null ? tlsDir : cohortHome.resolve("tls"), COORDINATOR_NAME);
    Coordinator coordinator =
        Coordinator.createWithRegistry(
            dir,
            tls.checkpointKey(),
            BarrierConfig.defaults(),
            new NodeLossConfig(
                OptionValues.imagePolicy("--image-policy", imagePolicy),
                copyRate == null ? 0 : OptionValues.bytes("--copy-rate", copyRate),
                deadAfter == null ? null : OptionValues.duration("--dead-after", deadAfter)),
            vhostPool,
            Duration.ofMillis(HEARTBEAT_MS * 3),
            tls.dialer());
    InetSocketAddress at = Daemons.parse(listen);
    CohortGrpcService api = new CohortGrpcService(coordinator);
    Path socket = ClientSocket.path(dir);
    PeerIdentity identities = PeerIdentity.system(); // the user names both ports look up
    InetSocketAddress agentsAt =
        agentListen != null
            ? Daemons.parse(agentListen)
            : new InetSocketAddress(at.getHostString(), at.getPort() + 1);
    // Two ports: users' clients have no certificate (the client API is TLS with the server's
    // certificate only; each call proves its user with a MUNGE credential), agents must present
    // theirs; one port could not refuse a peer without a certificate in the handshake.
    Server server =
        NettyServerBuilder.forAddress(at)
            .sslContext(tls.clientApiServer())
            .maxInboundMessageSize(JobInput.MAX_MESSAGE_BYTES) // a Run request carries stdin
            .addService(
                ServerInterceptors.intercept(
                    api,
                    new MungeAuthenticator(
                        Munge.system(),
                        identities,
                        "on the coordinator's machine, use its Unix socket (`--coordinator "
                            + ClientSocket.target(socket)
                            + "`; `cohort cluster up` makes it the default)",
                        System::nanoTime)))
            .build()
            .start();
    Server agents =
        NettyServerBuilder.forAddress(agentsAt)
            .sslContext(tls.daemonServer())
            .addService(
                ServerInterceptors.intercept(
                    new RegistryGrpcService(coordinator, HEARTBEAT_MS), DaemonPeerCheck.registry()))
            .build()
            .start();
    ClientSocket local = ClientSocket.serve(socket, api, identities);
    log.info(
        "coordinator serving clients on {} (MUNGE) and {}, agents on {} (catalog {}, certificates "
            + "in {}, TLS by {})",
        listen,
        socket,
        agentsAt.getHostString() + ":" + agentsAt.getPort(),
        dir,
        tls.dir(),
        DaemonTls.provider());
    String munged = Munge.system().roundTrip();
    if (munged != null) {
      log.warn(
          "MUNGE does not work on this machine ({}): every call on {} will be refused until "
              + "munged runs (`setup/munge.sh --start` as root)",
          munged,
          listen);
    }
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  local.shutdown();
                  agents.shutdown();
                  server.shutdown();
                  coordinator.close();
                }));
    server.awaitTermination();
    return 0;
  }
}
