package io.cohort.coordinator;

import io.cohort.proto.v1.AgentGrpc;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import java.io.IOException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/** Fake agents served over in-process gRPC, as the coordinator sees real ones. */
final class InProcessAgents implements AutoCloseable {
  private final List<Server> servers = new ArrayList<>();
  private final List<ManagedChannel> channels = new ArrayList<>();
  private final ExecutorService executor = Executors.newCachedThreadPool();

  /** A directory of the given agents, by node name. */
  AgentDirectory serve(Map<String, AgentGrpc.AgentImplBase> byNode) throws IOException {
    Map<String, AgentClient> clients = new HashMap<>();
    for (Map.Entry<String, AgentGrpc.AgentImplBase> e : byNode.entrySet()) {
      String name = "agent-" + e.getKey() + "-" + System.nanoTime();
      servers.add(
          InProcessServerBuilder.forName(name)
              .executor(executor)
              .addService(e.getValue())
              .build()
              .start());
      ManagedChannel ch = InProcessChannelBuilder.forName(name).executor(executor).build();
      channels.add(ch);
      clients.put(
          e.getKey(),
          new AgentClient(e.getKey(), ch, Duration.ofSeconds(10), Duration.ofSeconds(20)));
    }
    return new AgentDirectory(clients);
  }

  @Override
  public void close() {
    channels.forEach(ManagedChannel::shutdownNow);
    servers.forEach(Server::shutdownNow);
    executor.shutdownNow();
  }
}
