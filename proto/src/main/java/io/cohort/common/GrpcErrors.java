package io.cohort.common;

import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;

/** Translates between {@link CohortException} and gRPC statuses, in both directions. */
public final class GrpcErrors {
  private GrpcErrors() {}

  /**
   * A trailer set on every failure a Cohort service answers: a status without it came from the
   * transport (a connection lost, a deadline) or from gRPC itself, not from the server's decision.
   */
  private static final Metadata.Key<String> ANSWERED =
      Metadata.Key.of("cohort-answered", Metadata.ASCII_STRING_MARSHALLER);

  /** Whether a failed call was answered by a Cohort service (else: the transport failed). */
  public static boolean answered(StatusRuntimeException e) {
    return e.getTrailers() != null && e.getTrailers().containsKey(ANSWERED);
  }

  private static Metadata answeredTrailers() {
    Metadata m = new Metadata();
    m.put(ANSWERED, "1");
    return m;
  }

  /** The wire form of any failure of a service method. */
  public static StatusRuntimeException toStatus(Throwable t) {
    if (t instanceof StatusRuntimeException sre) {
      return sre;
    }
    if (t instanceof CohortException ce) {
      Status.Code code = Status.Code.valueOf(ce.kind().name());
      return Status.fromCode(code)
          .withDescription(ce.getMessage())
          .asRuntimeException(answeredTrailers());
    }
    return Status.INTERNAL
        .withDescription("internal error: " + t)
        .withCause(t)
        .asRuntimeException(answeredTrailers());
  }

  /**
   * Answers a unary call with {@code call}'s result, or with the canonical status of its failure:
   * the whole body of every unary service method.
   */
  public static <T> void unary(
      io.grpc.stub.StreamObserver<T> out, java.util.function.Supplier<T> call) {
    T result;
    try {
      result = call.get();
    } catch (RuntimeException e) {
      out.onError(toStatus(e));
      return;
    }
    out.onNext(result);
    out.onCompleted();
  }

  /** The domain form of a failed call, keeping the server's message. */
  public static CohortException fromStatus(StatusRuntimeException e, String who) {
    Status s = e.getStatus();
    String msg = s.getDescription() != null ? s.getDescription() : s.getCode().toString();
    CohortException.Kind kind;
    try {
      kind = CohortException.Kind.valueOf(s.getCode().name());
    } catch (IllegalArgumentException notOurs) {
      kind = CohortException.Kind.INTERNAL;
    }
    boolean transport =
        s.getCode() == Status.Code.UNAVAILABLE
            || s.getCode() == Status.Code.DEADLINE_EXCEEDED
            || (s.getCode() == Status.Code.INTERNAL
                && (s.getDescription() == null || s.getCause() != null));
    if (transport && !answered(e)) {
      // No Cohort service answered: the connection failed (the peer stopped, or cannot be
      // reached) or the deadline passed. gRPC's own words ("io exception", "Network closed for
      // unknown reason") are kept, but said to be about the connection.
      msg =
          s.getCode() == Status.Code.DEADLINE_EXCEEDED
              ? who + " did not answer in time (" + msg + ")"
              : who + " cannot be reached or stopped answering (" + msg + ")";
      kind =
          s.getCode() == Status.Code.DEADLINE_EXCEEDED
              ? CohortException.Kind.DEADLINE_EXCEEDED
              : CohortException.Kind.UNAVAILABLE;
    }
    return new CohortException(kind, msg, e);
  }
}
