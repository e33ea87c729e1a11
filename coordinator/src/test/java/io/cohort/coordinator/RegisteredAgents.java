package io.cohort.coordinator;

import io.cohort.proto.v1.AbandonedDump;
import io.cohort.proto.v1.HeartbeatRequest;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.IOException;
import java.time.Clock;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * {@link ScriptedAgent}s that a coordinator learns from their heartbeats, as the daemon does:
 * served over in-process gRPC, each at an address of its own, all recording into {@link #calls}.
 */
final class RegisteredAgents implements AutoCloseable {
  final List<String> calls = Collections.synchronizedList(new ArrayList<>());
  final Map<String, ScriptedAgent> byNode = new HashMap<>();
  final AgentDirectory directory;

  private final Map<String, String> addresses = new HashMap<>();
  private final List<Server> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = Collections.synchronizedList(new ArrayList<>());
  private final ExecutorService executor = Executors.newCachedThreadPool();

  RegisteredAgents() {
    directory =
        new AgentDirectory(
            Clock.systemUTC(),
            Duration.ofSeconds(60), // no node goes down while a test runs
            address -> {
              ManagedChannel ch =
                  InProcessChannelBuilder.forName(address).executor(executor).build();
              channels.add(ch);
              return ch;
            },
            (node, ch) -> new AgentClient(node, ch, Duration.ofSeconds(5), Duration.ofSeconds(20)));
  }

  /** Serves {@code agent} for its node (not registered until its first heartbeat). */
  ScriptedAgent serve(ScriptedAgent agent) throws IOException {
    String address = "registered-" + agent.node + "-" + System.nanoTime();
    servers.add(
        InProcessServerBuilder.forName(address)
            .executor(executor)
            .addService(agent)
            .build()
            .start());
    addresses.put(agent.node, address);
    byNode.put(agent.node, agent);
    return agent;
  }

  /** A coordinator starting on {@code catalog} as it is now, its agents not registered yet. */
  Coordinator coordinator(Catalog catalog) {
    return new Coordinator(
        catalog, directory, BarrierConfig.defaults(), NodeLossConfig.defaults(), Clock.systemUTC());
  }

  /** The heartbeat of {@code node}'s agent, reporting {@code abandoned}. */
  HeartbeatRequest beat(String node, AbandonedDump... abandoned) {
    return HeartbeatRequest.newBuilder()
        .setNode(node)
        .setAddress(addresses.get(node))
        .addAllAbandonedDumps(List.of(abandoned))
        .build();
  }

  @Override
  public void close() {
    directory.close();
    channels.forEach(ManagedChannel::shutdownNow);
    servers.forEach(Server::shutdownNow);
    executor.shutdownNow();
  }
}
