package io.cohort.common;

import io.grpc.Context;
import io.grpc.Status;
import io.grpc.stub.ServerCallStreamObserver;
import io.grpc.stub.StreamObserver;
import java.time.Duration;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;

/**
 * The sending side of a server stream that respects gRPC flow control: {@link #accept} waits until
 * the call is ready for another message (the client has room for it), so a slow reader slows the
 * producer down instead of making the server buffer without bound.
 *
 * <p>Producers run on the service's executor (never on a transport thread), so waiting here blocks
 * nothing but the producer. Use it from the thread that handles the call, as the one producer of
 * the stream. gRPC delivers a call's on-ready and cancel events on the same serializing executor as
 * the handler that is waiting, so neither can wake it: {@code isReady()} (updated by the transport)
 * is polled every {@value #POLL_MS} ms, and a client gone away is seen through the call's {@link
 * Context}, which the transport cancels at once.
 */
public final class FlowControlledSink<T> implements Consumer<T> {
  /** How long a message may wait for the client before the call is given up. */
  public static final Duration DEFAULT_STALL = Duration.ofMinutes(5);

  private static final long POLL_MS = 5;

  private final ServerCallStreamObserver<T> call;
  private final Duration stall;
  private final Context context = Context.current();

  private FlowControlledSink(ServerCallStreamObserver<T> call, Duration stall) {
    this.call = call;
    this.stall = stall;
  }

  /** Wraps the observer of a server-streaming call (set up before the first message). */
  public static <T> FlowControlledSink<T> of(StreamObserver<T> out) {
    return of(out, DEFAULT_STALL);
  }

  /** As {@link #of(StreamObserver)}, giving up after {@code stall} without room. */
  public static <T> FlowControlledSink<T> of(StreamObserver<T> out, Duration stall) {
    return new FlowControlledSink<>((ServerCallStreamObserver<T>) out, stall);
  }

  /** True once the client has gone away (cancelled, or its deadline passed). */
  private boolean gone() {
    return context.isCancelled() || call.isCancelled();
  }

  /** Whether the client has gone away, for producers that poll it: they should stop. */
  public BooleanSupplier cancelledSignal() {
    return this::gone;
  }

  /**
   * Sends {@code message} once the client can take it. Throws CANCELLED if the client went away
   * meanwhile, DEADLINE_EXCEEDED if it took nothing for {@link #DEFAULT_STALL}.
   */
  @Override
  public void accept(T message) {
    long deadline = System.nanoTime() + stall.toNanos();
    while (!call.isReady()) {
      if (gone()) {
        throw Status.CANCELLED.withDescription("the client went away").asRuntimeException();
      }
      if (System.nanoTime() > deadline) {
        throw new CohortException(
            CohortException.Kind.DEADLINE_EXCEEDED,
            "the client read nothing for " + stall + "; giving up the stream");
      }
      try {
        Thread.sleep(POLL_MS);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw Status.CANCELLED.withDescription("interrupted").asRuntimeException();
      }
    }
    call.onNext(message);
  }

  /** Ends the stream normally, unless the client has gone already. */
  public void complete() {
    if (!gone()) {
      call.onCompleted();
    }
  }

  /** Ends the stream with the canonical status of {@code t}, unless the client has gone. */
  public void fail(Throwable t) {
    if (!gone()) {
      call.onError(GrpcErrors.toStatus(t));
    }
  }
}
