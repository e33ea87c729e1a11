package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.GetVhostRequest;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.ReadOutputRequest;
import io.cohort.proto.v1.StreamOutputRequest;
import io.cohort.proto.v1.VhostPlacement;
import io.cohort.proto.v1.VhostState;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import io.grpc.stub.StreamObservers;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * `cohort logs` through the coordinator: a client that reads slowly holds the relay back, so the
 * coordinator does not pull the agent's output (and buffer it) faster than it is read.
 */
class OutputFlowControlTest {
  private static final int CHUNKS = 500;

  @TempDir Path dir;

  private final InProcessAgents inProcess = new InProcessAgents();
  private final ExecutorService executor = Executors.newCachedThreadPool();
  private Server server;
  private ManagedChannel channel;

  @AfterEach
  void tearDown() {
    if (channel != null) {
      channel.shutdownNow();
    }
    if (server != null) {
      server.shutdownNow();
    }
    inProcess.close();
    executor.shutdownNow();
  }

  /** An agent whose output is {@code CHUNKS} chunks, served with flow control; counts pulls. */
  @SuppressWarnings("deprecation") // grpc-java's own flow-controlled copy, as the fake agent
  private static final class Agent extends AgentGrpc.AgentImplBase {
    final AtomicInteger pulled = new AtomicInteger();
    final CountDownLatch exhausted = new CountDownLatch(1);

    @Override
    public void getVhost(GetVhostRequest r, StreamObserver<GetVhostResponse> o) {
      o.onNext(
          GetVhostResponse.newBuilder()
              .setState(VhostState.VHOST_STATE_RUNNING)
              .setPlacement(VhostPlacement.newBuilder().setVhostId(r.getVhostId()).setNode("n1"))
              .build());
      o.onCompleted();
    }

    @Override
    public void readOutput(ReadOutputRequest r, StreamObserver<OutputChunk> o) {
      Iterator<OutputChunk> source =
          new Iterator<>() {
            @Override
            public boolean hasNext() {
              if (pulled.get() < CHUNKS) {
                return true;
              }
              exhausted.countDown();
              return false;
            }

            @Override
            public OutputChunk next() {
              int i = pulled.getAndIncrement();
              return OutputChunk.newBuilder()
                  .setOffset(i * 1024L)
                  .setData(ByteString.copyFrom(new byte[1024]))
                  .build();
            }
          };
      StreamObservers.copyWithFlowControl(source, (ServerCallStreamObserver<OutputChunk>) o);
    }
  }

  @Test
  void aClientThatDoesNotReadHoldsTheRelayBackAndGetsEverythingOnceItReads() throws Exception {
    Agent agent = new Agent();
    Catalog catalog = new Catalog(dir, TestKey.KEY);
    catalog.saveJob(
        JobRecord.newBuilder()
            .setNextEpoch(1)
            .setInfo(
                JobInfo.newBuilder()
                    .setJobId("7")
                    .setState(JobState.JOB_STATE_RUNNING)
                    .addVhosts(VhostPlacement.newBuilder().setVhostId("7-0").setNode("n1")))
            .build());
    Coordinator coordinator =
        new Coordinator(
            catalog,
            inProcess.serve(Map.of("n1", agent)),
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC());
    String name = "coordinator-" + System.nanoTime();
    server =
        InProcessServerBuilder.forName(name)
            .executor(executor)
            .addService(new CohortGrpcService(coordinator))
            .intercept(io.cohort.common.CallerInterceptor.fixed(io.cohort.common.Caller.root()))
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).executor(executor).build();

    CountDownLatch first = new CountDownLatch(1);
    AtomicInteger received = new AtomicInteger();
    CompletableFuture<Void> completed = new CompletableFuture<>();
    ClientCallStreamObserver<?>[] stream = {null};
    CohortGrpc.newStub(channel)
        .streamOutput(
            StreamOutputRequest.newBuilder().setJobId("7").build(),
            new ClientResponseObserver<StreamOutputRequest, OutputChunk>() {
              @Override
              public void beforeStart(ClientCallStreamObserver<StreamOutputRequest> s) {
                stream[0] = s;
                s.disableAutoRequestWithInitial(1); // reads one chunk, then nothing until told
              }

              @Override
              public void onNext(OutputChunk c) {
                assertEquals(received.getAndIncrement() * 1024L, c.getOffset());
                first.countDown();
              }

              @Override
              public void onError(Throwable t) {
                completed.completeExceptionally(t);
              }

              @Override
              public void onCompleted() {
                completed.complete(null);
              }
            });
    assertTrue(first.await(10, TimeUnit.SECONDS));
    // Without flow control the relay drains the agent in a few milliseconds, so waiting one
    // second for that not to happen is a clear margin; the bound allows gRPC's small buffers.
    assertFalse(
        agent.exhausted.await(1, TimeUnit.SECONDS),
        "the coordinator pulled all " + CHUNKS + " chunks for a client that read one");
    assertTrue(agent.pulled.get() <= 8, "pulled " + agent.pulled.get() + " for 1 read");

    stream[0].request(CHUNKS);
    completed.get(10, TimeUnit.SECONDS);
    assertEquals(CHUNKS, received.get());
    coordinator.close();
  }
}
