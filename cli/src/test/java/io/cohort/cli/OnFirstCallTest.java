package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.GetNodeRequest;
import io.cohort.proto.v1.GetNodeResponse;
import io.grpc.ManagedChannel;
import io.grpc.Server;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

/** The embedded agent's service is built on its first call; a failure to build is answered. */
class OnFirstCallTest {
  private final AtomicInteger builds = new AtomicInteger();
  private volatile boolean fail = true;
  private Server server;
  private ManagedChannel channel;

  private AgentGrpc.AgentBlockingStub start() throws Exception {
    String name = InProcessServerBuilder.generateName();
    server =
        InProcessServerBuilder.forName(name)
            .directExecutor()
            .fallbackHandlerRegistry(
                new OnFirstCall(
                    AgentGrpc.SERVICE_NAME,
                    AgentGrpc::getServiceDescriptor,
                    () -> {
                      builds.incrementAndGet();
                      if (fail) {
                        throw CohortException.precondition("cannot install cohort-init");
                      }
                      return new AgentGrpc.AgentImplBase() {
                        @Override
                        public void getNode(
                            GetNodeRequest req, StreamObserver<GetNodeResponse> out) {
                          out.onNext(GetNodeResponse.newBuilder().setNode("local").build());
                          out.onCompleted();
                        }
                      }.bindService();
                    }))
            .build()
            .start();
    channel = InProcessChannelBuilder.forName(name).directExecutor().build();
    return AgentGrpc.newBlockingStub(channel);
  }

  @AfterEach
  void stop() {
    channel.shutdownNow();
    server.shutdownNow();
  }

  @Test
  void buildsOnTheFirstCallOnlyAndAnswersItsFailureThenTriesAgain() throws Exception {
    AgentGrpc.AgentBlockingStub agent = start();
    assertEquals(0, builds.get(), "nothing is built before a call");

    StatusRuntimeException e =
        assertThrows(
            StatusRuntimeException.class, () -> agent.getNode(GetNodeRequest.getDefaultInstance()));
    assertEquals(Status.Code.FAILED_PRECONDITION, e.getStatus().getCode());
    assertEquals("cannot install cohort-init", e.getStatus().getDescription());

    fail = false;
    assertEquals("local", agent.getNode(GetNodeRequest.getDefaultInstance()).getNode());
    assertEquals("local", agent.getNode(GetNodeRequest.getDefaultInstance()).getNode());
    assertEquals(2, builds.get(), "built again after the failure, then kept");
  }
}
