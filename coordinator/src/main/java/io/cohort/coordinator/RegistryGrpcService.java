package io.cohort.coordinator;

import io.cohort.common.DaemonPeerCheck;
import io.cohort.common.GrpcErrors;
import io.cohort.proto.v1.HeartbeatRequest;
import io.cohort.proto.v1.HeartbeatResponse;
import io.cohort.proto.v1.RegistryGrpc;
import io.grpc.stub.StreamObserver;

/** Thin gRPC adapter: agents' heartbeats to the coordinator daemon. */
public final class RegistryGrpcService extends RegistryGrpc.RegistryImplBase {
  private final Coordinator coordinator;
  private final long intervalMs;

  public RegistryGrpcService(Coordinator coordinator, long intervalMs) {
    this.coordinator = coordinator;
    this.intervalMs = intervalMs;
  }

  @Override
  public void heartbeat(HeartbeatRequest req, StreamObserver<HeartbeatResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          DaemonPeerCheck.requireNode(req.getNode());
          coordinator.heartbeat(req);
          return HeartbeatResponse.newBuilder().setIntervalMs(intervalMs).build();
        });
  }
}
