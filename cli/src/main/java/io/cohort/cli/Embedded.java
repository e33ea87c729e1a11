package io.cohort.cli;

import io.cohort.agent.AgentConfig;
import io.cohort.agent.AgentGrpcService;
import io.cohort.agent.NodeAgent;
import io.cohort.common.Caller;
import io.cohort.common.CallerInterceptor;
import io.cohort.common.CheckpointKey;
import io.cohort.common.JobInput;
import io.cohort.coordinator.BarrierConfig;
import io.cohort.coordinator.CohortGrpcService;
import io.cohort.coordinator.Coordinator;
import io.cohort.proto.v1.AgentGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The embedded single-node mode: the same coordinator and agent code as the daemons, wired together
 * in this process over in-process gRPC. State lives on disk under the Cohort home, so consecutive
 * CLI processes see the same jobs and checkpoints.
 */
final class Embedded implements AutoCloseable {
  static final String NODE = "local";
  private static final AtomicLong INSTANCES = new AtomicLong();

  private final ExecutorService executor =
      Executors.newCachedThreadPool(
          r -> {
            Thread t = new Thread(r, "cohort-embedded");
            t.setDaemon(true);
            return t;
          });
  private final Server agentServer;
  private final ManagedChannel agentChannel;
  private final Coordinator coordinator;
  private final Server coordinatorServer;
  private final ManagedChannel clientChannel;

  Embedded(Settings settings) throws IOException {
    // The key of the daemons' TLS directory: a node's own jobs and its daemons' share the catalog
    // and the images, so they sign with one key (made here, root's only, on a machine without).
    CheckpointKey key = CheckpointKey.loadOrCreate(checkpointKey(settings.home()));
    // Unique in this process is enough for in-process names (a UUID cost a SecureRandom).
    String suffix = Long.toString(INSTANCES.incrementAndGet());
    // The agent is built on its first call: `ps` or `checkpoints` with no running job never
    // needs it, and building it (its gRPC service, the binaries it installs) was a fifth of
    // such a command.
    agentServer =
        InProcessServerBuilder.forName("agent-" + suffix)
            .executor(executor)
            .maxInboundMessageSize(JobInput.MAX_MESSAGE_BYTES) // CreateVhost carries stdin
            .fallbackHandlerRegistry(
                new OnFirstCall(
                    AgentGrpc.SERVICE_NAME,
                    AgentGrpc::getServiceDescriptor,
                    () ->
                        new AgentGrpcService(
                                new NodeAgent(
                                    AgentConfig.defaults(
                                            NODE,
                                            settings.home().resolve("agent"),
                                            settings.nativeDir(),
                                            settings.criu())
                                        .withCheckpointKey(key)))
                            .bindService()))
            .build()
            .start();
    agentChannel = InProcessChannelBuilder.forName("agent-" + suffix).executor(executor).build();
    coordinator =
        Coordinator.create(
            settings.home().resolve("coordinator"),
            key,
            Map.of(NODE, agentChannel),
            BarrierConfig.defaults());
    coordinatorServer =
        InProcessServerBuilder.forName("coord-" + suffix)
            .executor(executor)
            .maxInboundMessageSize(JobInput.MAX_MESSAGE_BYTES) // a Run request carries stdin
            .addService(new CohortGrpcService(coordinator))
            // Only root runs the embedded mode (see Cli): the caller is this process, root.
            .intercept(CallerInterceptor.fixed(Caller.root()))
            .build()
            .start();
    clientChannel = InProcessChannelBuilder.forName("coord-" + suffix).executor(executor).build();
  }

  /**
   * Removes the images a crashed checkpoint left (sealed, never recorded): what a coordinator does
   * at its start. Run before a command that changes jobs, and waited for, so that an exiting CLI
   * never stops a removal midway; queries skip it (it builds the agent, a third of a `cohort ps`).
   */
  void sweepImages() {
    coordinator.sweepImages();
  }

  /** Where the embedded mode's checkpoint key is: the daemons' default TLS directory. */
  static Path checkpointKey(Path home) {
    return home.resolve("tls").resolve(CheckpointKey.FILE);
  }

  ManagedChannel channel() {
    return clientChannel;
  }

  @Override
  public void close() {
    clientChannel.shutdownNow();
    coordinatorServer.shutdownNow();
    coordinator.close();
    agentChannel.shutdownNow();
    agentServer.shutdownNow();
    executor.shutdownNow();
  }

  /**
   * Where things are, and the largest standard input `cohort run` passes on (COHORT_STDIN_MAX);
   * from the environment, defaults in docs/configuration.md.
   */
  record Settings(Path home, Path nativeDir, String criu, String stdinMax) {
    static Settings fromEnvironment() {
      Map<String, String> env = System.getenv();
      return new Settings(
          Path.of(env.getOrDefault("COHORT_HOME", "/var/lib/cohort")),
          Path.of(env.getOrDefault("COHORT_NATIVE_DIR", "/opt/cohort/native")),
          env.getOrDefault("COHORT_CRIU", "/opt/cohort/bin/criu"),
          env.getOrDefault("COHORT_STDIN_MAX", "16M"));
    }
  }
}
