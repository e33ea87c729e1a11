package io.cohort.cli;

import io.cohort.agent.AgentConfig;
import io.cohort.agent.AgentGrpcService;
import io.cohort.agent.DataPath;
import io.cohort.agent.NodeAgent;
import io.cohort.agent.VhostOverlay;
import io.cohort.common.DaemonPeerCheck;
import io.cohort.common.JobInput;
import io.cohort.proto.v1.AbandonedDump;
import io.cohort.proto.v1.GetNodeResponse;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.RegistryGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.ServerInterceptors;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.NettyServerBuilder;
import java.net.InetSocketAddress;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

@Command(
    name = "agent",
    mixinStandardHelpOptions = true,
    description = {
      "Run a node agent daemon (as root): it runs jobs' vhosts on this node, "
          + "checkpoints and restores them, and sends heartbeats to the coordinator.",
      "Runs until SIGTERM or SIGINT; the jobs' vhosts keep running without it."
    })
final class AgentCommand implements Callable<Integer> {
  @Option(
      names = "--coordinator",
      required = true,
      paramLabel = "HOST:PORT",
      description =
          "the coordinator daemon's agent port (its --agent-listen: by default its --listen "
              + "port + 1)")
  String coordinator;

  @Option(names = "--node", required = true, paramLabel = "NAME", description = "this node's name")
  String node;

  @Option(
      names = "--listen",
      required = true,
      paramLabel = "HOST:PORT",
      description = "address to serve the agent protocol on (the coordinator dials it)")
  String listen;

  @Option(
      names = "--home",
      paramLabel = "DIR",
      description = "state directory (default: $COHORT_HOME/agent)")
  Path home;

  @Option(
      names = "--shared-images",
      paramLabel = "DIR",
      description =
          "keep checkpoint images in DIR, a directory every node sees (e.g. on a "
              + "cluster file system), instead of the state directory: a job restarts on other "
              + "nodes without copying its images, even when the nodes that wrote them are down")
  Path sharedImages;

  @Option(
      names = "--decision-lease",
      paramLabel = "DURATION",
      description =
          "how long a checkpoint that froze a vhost waits for the coordinator's decision, e.g. "
              + "30s, before this agent aborts it on its own: the vhost runs on (with --stop it is "
              + "ended). Default: the phase's own timeout as the coordinator says it, plus 5 s. "
              + "Shorter frees a job sooner when the coordinator is lost, but a checkpoint whose "
              + "dumps take longer than it is aborted")
  String decisionLease;

  @Option(
      names = "--data-path",
      paramLabel = "PATH",
      defaultValue = "${env:COHORT_DATA_PATH:-kernel}",
      description =
          "how vhost packets cross between nodes: kernel (VXLAN between node addresses; the "
              + "agent interposes only at a checkpoint) or overlay (every packet through the "
              + "agents' user-space overlay, which needs only a TUN device). Default: "
              + "$COHORT_DATA_PATH, else kernel")
  String dataPath;

  @Option(
      names = "--fabric-mtu",
      paramLabel = "BYTES",
      description =
          "the MTU of the path between nodes, when it is smaller than that of the node's own "
              + "link (e.g. a switch without jumbo frames); the vhosts' MTU is this minus 50 "
              + "with the kernel path. Default: the MTU of the link holding --listen's address")
  Integer fabricMtu;

  @Option(
      names = "--tls",
      paramLabel = "DIR",
      description =
          "where this node's certificate and key (NODE.crt, NODE.key), the cluster CA's "
              + "certificate (ca.crt) and the cluster's checkpoint key (checkpoint.key) are "
              + "(default: $COHORT_HOME/tls); see `cohort ca`")
  Path tlsDir;

  @Override
  public Integer call() throws Exception {
    Duration lease =
        decisionLease == null ? null : OptionValues.duration("--decision-lease", decisionLease);
    Daemons.logAtInfo();
    Logger log = LoggerFactory.getLogger("agent " + node);
    Embedded.Settings s = Embedded.Settings.fromEnvironment();
    Path dir = home != null ? home : s.home().resolve("agent");
    InetSocketAddress at = Daemons.parse(listen);
    DaemonTls tls = DaemonTls.load(tlsDir != null ? tlsDir : s.home().resolve("tls"), node);
    log.info("TLS by {}", DaemonTls.provider());
    VhostOverlay overlay =
        VhostOverlay.start(
            node, new InetSocketAddress(at.getHostString(), at.getPort() + 1), tls.overlay());
    NodeAgent agent =
        new NodeAgent(
            AgentConfig.defaults(node, dir, s.nativeDir(), s.criu())
                .withVhostNetworking(true)
                .withSharedImages(sharedImages)
                .withDecisionLease(lease)
                .withCheckpointKey(tls.checkpointKey()),
            tls.dialer(),
            overlay,
            dataPath(at.getHostString()));
    Server server =
        NettyServerBuilder.forAddress(Daemons.parse(listen))
            .sslContext(tls.daemonServer())
            .maxInboundMessageSize(JobInput.MAX_MESSAGE_BYTES) // CreateVhost carries stdin
            .addService(
                ServerInterceptors.intercept(
                    new AgentGrpcService(agent), DaemonPeerCheck.agentService()))
            .build()
            .start();
    log.info(
        "serving on {} (state {}), overlay on {}, coordinator {}, certificates in {}",
        listen,
        dir,
        agent.overlayAddress(),
        coordinator,
        tls.dir());

    ManagedChannel ch = tls.dialer().apply(coordinator);
    RegistryGrpc.RegistryBlockingStub registry = RegistryGrpc.newBlockingStub(ch);
    ScheduledExecutorService beats = Executors.newSingleThreadScheduledExecutor();
    boolean[] connected = {false};
    boolean[] told = {false};
    beats.scheduleWithFixedDelay(
        () -> {
          try {
            GetNodeResponse me = agent.describe();
            List<AbandonedDump> abandoned = agent.abandonedDumps();
            registry
                .withDeadlineAfter(2, TimeUnit.SECONDS)
                .heartbeat(
                    HeartbeatRequest.newBuilder()
                        .setNode(node)
                        .setAddress(listen)
                        .setKernel(me.getKernel())
                        .setCriuVersion(me.getCriuVersion())
                        .setOverlayPacketsIn(overlay.packetsIn())
                        .setOverlayPacketsOut(overlay.packetsOut())
                        .setImageStoreFreeBytes(me.getImageStoreFreeBytes())
                        .setOverlayAddress(agent.overlayAddress())
                        .setImageStoreId(me.getImageStoreId())
                        .addAllAbandonedDumps(abandoned)
                        .build());
            agent.reported(abandoned); // the coordinator has them
            if (!connected[0]) {
              log.info("registered with the coordinator at {}", coordinator);
              connected[0] = true;
            }
          } catch (StatusRuntimeException e) {
            if (connected[0] || !told[0]) {
              // Once when it never answered (a wrong port, a certificate refused), and at each
              // loss: what the operator needs to see, not a line a second.
              log.warn(
                  "{} the coordinator at {}: {}{}",
                  connected[0] ? "lost" : "cannot register with",
                  coordinator,
                  e.getStatus(),
                  e.getStatus().getCode() == Status.Code.UNIMPLEMENTED
                      ? "; that is not the coordinator's agent port: give --coordinator its "
                          + "--agent-listen address (its --listen port + 1 unless set)"
                      : "");
              told[0] = true;
            }
            connected[0] = false;
          } catch (RuntimeException e) {
            log.warn("heartbeat failed: {}", e.toString());
          }
        },
        0,
        CoordinatorCommand.HEARTBEAT_MS,
        TimeUnit.MILLISECONDS);
    Runtime.getRuntime()
        .addShutdownHook(
            new Thread(
                () -> {
                  beats.shutdownNow();
                  ch.shutdownNow();
                  server.shutdown();
                  overlay.close();
                }));
    server.awaitTermination();
    return 0;
  }

  /** The data path the options ask for; the fabric's MTU read from the node when not given. */
  private DataPath dataPath(String nodeAddress) {
    return switch (dataPath) {
      case "kernel" ->
          new DataPath(true, fabricMtu != null ? fabricMtu : DataPath.fabricMtuOf(nodeAddress));
      case "overlay" -> DataPath.overlay();
      default ->
          throw new picocli.CommandLine.ParameterException(
              new picocli.CommandLine(this),
              "--data-path must be kernel or overlay, got '" + dataPath + "'");
    };
  }
}
