package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.ReadOutputRequest;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import io.grpc.ForwardingServerCall;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Server;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.ServerInterceptors;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.ClientCallStreamObserver;
import io.grpc.stub.ClientResponseObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The agent's server streams send only what the client has room for. */
class AgentStreamsFlowControlTest {
  private static final int CHUNKS = 64; // of the output log's 64 KB read size

  @TempDir Path home;
  private Server server;
  private ManagedChannel channel;

  @AfterEach
  void tearDown() throws Exception {
    if (channel != null) {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
    if (server != null) {
      server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  @Test
  void aReaderThatTakesNothingHoldsTheOutputStreamBack() throws Exception {
    AgentConfig config =
        AgentConfig.defaults("n1", home, home.resolve("native"), "criu")
            .withCheckpointKey(TestKey.KEY);
    VhostRecords records = new VhostRecords(config.vhostsDir(), "n1");
    Path dir = Files.createDirectories(records.vhostDir("5-0"));
    Path log = dir.resolve("output.log");
    Files.write(log, new byte[CHUNKS * 64 * 1024]);
    records.save(
        VhostRecord.newBuilder()
            .setVhostId("5-0")
            .setJobId("5")
            .setLogPath(log.toString())
            .setStatusPath(dir.resolve("status").toString())
            .setState(VhostState.VHOST_STATE_EXITED)
            .build());
    AtomicInteger sent = new AtomicInteger();
    ServerInterceptor counting =
        new ServerInterceptor() {
          @Override
          public <Q, R> ServerCall.Listener<Q> interceptCall(
              ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
            return next.startCall(
                new ForwardingServerCall.SimpleForwardingServerCall<>(call) {
                  @Override
                  public void sendMessage(R message) {
                    sent.incrementAndGet();
                    super.sendMessage(message);
                  }
                },
                headers);
          }
        };
    String name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name)
            .addService(
                ServerInterceptors.intercept(new AgentGrpcService(new NodeAgent(config)), counting))
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).build();
    AtomicReference<ClientCallStreamObserver<ReadOutputRequest>> call = new AtomicReference<>();
    AtomicLong bytes = new AtomicLong();
    CountDownLatch first = new CountDownLatch(1);
    CountDownLatch done = new CountDownLatch(1);
    AgentGrpc.newStub(channel)
        .readOutput(
            ReadOutputRequest.newBuilder().setVhostId("5-0").build(),
            new ClientResponseObserver<ReadOutputRequest, OutputChunk>() {
              @Override
              public void beforeStart(ClientCallStreamObserver<ReadOutputRequest> c) {
                call.set(c);
                c.disableAutoRequestWithInitial(1);
              }

              @Override
              public void onNext(OutputChunk chunk) {
                bytes.addAndGet(chunk.getData().size());
                first.countDown();
              }

              @Override
              public void onError(Throwable t) {
                done.countDown();
              }

              @Override
              public void onCompleted() {
                done.countDown();
              }
            });
    assertTrue(first.await(10, TimeUnit.SECONDS));
    Thread.sleep(500); // time for a sender that ignores flow control to send everything
    assertTrue(sent.get() <= 3, "sent " + sent.get() + " chunks to a reader that asked for 1");
    call.get().request(Integer.MAX_VALUE);
    assertTrue(done.await(10, TimeUnit.SECONDS));
    assertEquals(Files.size(log), bytes.get(), "everything arrives once the reader reads");
  }
}
