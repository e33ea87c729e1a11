package io.cohort.coordinator;

import io.cohort.common.GrpcErrors;
import io.grpc.stub.ServerCallStreamObserver;
import java.util.Iterator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Copies a source to a server stream only as fast as the client takes it, as grpc-java's {@code
 * StreamObservers.copyWithFlowControl}: it pulls the next item only while the call {@code
 * isReady()}, and gRPC runs it again (the on-ready handler) when the client asks for more. A slow
 * reader thus holds the source back instead of making the coordinator buffer without bound; when
 * the source is an agent's stream, that stream waits in turn.
 *
 * <p>Runs only on the call's serializing executor (gRPC's handlers), so its state needs no lock. A
 * client that goes away cancels the call's context, which cancels an agent call made in it, so a
 * source blocked waiting for more (follow) fails and the relay ends.
 */
final class FlowControlledRelay<T> implements Runnable {
  private static final Logger log = LoggerFactory.getLogger(FlowControlledRelay.class);

  private final Iterator<T> source;
  private final ServerCallStreamObserver<T> call;
  private boolean done;

  private FlowControlledRelay(Iterator<T> source, ServerCallStreamObserver<T> call) {
    this.source = source;
    this.call = call;
  }

  /** Starts relaying; call from the service method (handlers must be set before it returns). */
  static <T> void start(Iterator<T> source, ServerCallStreamObserver<T> call) {
    FlowControlledRelay<T> relay = new FlowControlledRelay<>(source, call);
    call.setOnCancelHandler(() -> relay.done = true);
    call.setOnReadyHandler(relay);
  }

  @Override
  public void run() {
    if (done) {
      return;
    }
    try {
      while (call.isReady()) {
        if (!source.hasNext()) {
          done = true;
          call.onCompleted();
          return;
        }
        call.onNext(source.next());
      }
    } catch (RuntimeException e) {
      done = true;
      try {
        call.onError(GrpcErrors.toStatus(e));
      } catch (RuntimeException gone) {
        log.debug("client gone before the end of its stream: {}", gone.toString());
      }
    }
  }
}
