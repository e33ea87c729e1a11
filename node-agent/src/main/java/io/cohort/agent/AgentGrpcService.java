package io.cohort.agent;

import io.cohort.common.FlowControlledSink;
import io.cohort.common.GrpcErrors;
import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.ConfigureJobNetworkRequest;
import io.cohort.proto.v1.ConfigureJobNetworkResponse;
import io.cohort.proto.v1.CreateVhostRequest;
import io.cohort.proto.v1.CreateVhostResponse;
import io.cohort.proto.v1.DeleteImageRequest;
import io.cohort.proto.v1.DeleteImageResponse;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.ExportImageRequest;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.GetNodeRequest;
import io.cohort.proto.v1.GetNodeResponse;
import io.cohort.proto.v1.GetVhostRequest;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.ImageChunk;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.ImportImageResponse;
import io.cohort.proto.v1.KillVhostRequest;
import io.cohort.proto.v1.KillVhostResponse;
import io.cohort.proto.v1.ListImagesRequest;
import io.cohort.proto.v1.ListImagesResponse;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.ReadOutputRequest;
import io.cohort.proto.v1.ReleaseRestoredRequest;
import io.cohort.proto.v1.ReleaseRestoredResponse;
import io.cohort.proto.v1.RestoreVhostRequest;
import io.cohort.proto.v1.RestoreVhostResponse;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.SignalVhostRequest;
import io.cohort.proto.v1.SignalVhostResponse;
import io.cohort.proto.v1.VerifyImageRequest;
import io.cohort.proto.v1.VerifyImageResponse;
import io.grpc.stub.StreamObserver;

/** Thin gRPC adapter over {@link NodeAgent}: no logic here, only translation. */
public final class AgentGrpcService extends AgentGrpc.AgentImplBase {
  private final NodeAgent agent;

  public AgentGrpcService(NodeAgent agent) {
    this.agent = agent;
  }

  @Override
  public void getNode(GetNodeRequest req, StreamObserver<GetNodeResponse> out) {
    GrpcErrors.unary(out, agent::describe);
  }

  @Override
  public void createVhost(CreateVhostRequest req, StreamObserver<CreateVhostResponse> out) {
    GrpcErrors.unary(out, () -> agent.createVhost(req));
  }

  @Override
  public void getVhost(GetVhostRequest req, StreamObserver<GetVhostResponse> out) {
    GrpcErrors.unary(out, () -> agent.getVhost(req.getVhostId()));
  }

  @Override
  public void killVhost(KillVhostRequest req, StreamObserver<KillVhostResponse> out) {
    GrpcErrors.unary(
        out, () -> KillVhostResponse.newBuilder().setState(agent.kill(req.getVhostId())).build());
  }

  @Override
  public void signalVhost(SignalVhostRequest req, StreamObserver<SignalVhostResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          agent.signal(req.getVhostId(), req.getSignal());
          return SignalVhostResponse.getDefaultInstance();
        });
  }

  @Override
  public void prepareCheckpoint(
      PrepareCheckpointRequest req, StreamObserver<PrepareCheckpointResponse> out) {
    GrpcErrors.unary(out, () -> agent.prepare(req));
  }

  @Override
  public void dumpVhost(DumpVhostRequest req, StreamObserver<DumpVhostResponse> out) {
    GrpcErrors.unary(out, () -> agent.dump(req));
  }

  @Override
  public void resumeVhost(ResumeVhostRequest req, StreamObserver<ResumeVhostResponse> out) {
    GrpcErrors.unary(out, () -> agent.resume(req));
  }

  @Override
  public void sealImage(SealImageRequest req, StreamObserver<SealImageResponse> out) {
    GrpcErrors.unary(out, () -> agent.seal(req));
  }

  @Override
  public void finishCheckpoint(
      FinishCheckpointRequest req, StreamObserver<FinishCheckpointResponse> out) {
    GrpcErrors.unary(out, () -> agent.finish(req));
  }

  @Override
  public void verifyImage(VerifyImageRequest req, StreamObserver<VerifyImageResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          agent.verify(req);
          return VerifyImageResponse.getDefaultInstance();
        });
  }

  @Override
  public void restoreVhost(RestoreVhostRequest req, StreamObserver<RestoreVhostResponse> out) {
    GrpcErrors.unary(out, () -> agent.restore(req));
  }

  @Override
  public void deleteImage(DeleteImageRequest req, StreamObserver<DeleteImageResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          agent.deleteImage(req.getCheckpointId(), req.getVhostId());
          return DeleteImageResponse.getDefaultInstance();
        });
  }

  @Override
  public void listImages(ListImagesRequest req, StreamObserver<ListImagesResponse> out) {
    GrpcErrors.unary(out, agent::listImages);
  }

  @Override
  public void configureJobNetwork(
      ConfigureJobNetworkRequest req, StreamObserver<ConfigureJobNetworkResponse> out) {
    GrpcErrors.unary(
        out,
        () -> {
          agent.configureJobNetwork(req);
          return ConfigureJobNetworkResponse.getDefaultInstance();
        });
  }

  @Override
  public void releaseRestored(
      ReleaseRestoredRequest req, StreamObserver<ReleaseRestoredResponse> out) {
    GrpcErrors.unary(
        out,
        () ->
            ReleaseRestoredResponse.newBuilder()
                .setReleased(agent.releaseRestored(req.getJobId()))
                .build());
  }

  @Override
  public void exportImage(ExportImageRequest req, StreamObserver<ImageChunk> out) {
    FlowControlledSink<ImageChunk> sink = FlowControlledSink.of(out);
    try {
      agent.exportImage(req.getCheckpointId(), req.getVhostId(), sink, sink.cancelledSignal());
    } catch (RuntimeException e) {
      sink.fail(e);
      return;
    }
    sink.complete();
  }

  @Override
  public void importImage(ImportImageRequest req, StreamObserver<ImportImageResponse> out) {
    GrpcErrors.unary(out, () -> agent.importImage(req));
  }

  @Override
  public void readOutput(ReadOutputRequest req, StreamObserver<OutputChunk> out) {
    FlowControlledSink<OutputChunk> sink = FlowControlledSink.of(out);
    try {
      agent.readOutput(req, sink, sink.cancelledSignal());
    } catch (RuntimeException e) {
      sink.fail(e);
      return;
    }
    sink.complete();
  }
}
