package io.cohort.common;

/**
 * The one unchecked exception of Cohort's domain logic. Its {@link Kind} says which canonical
 * status it becomes on the wire; its message is written for the user: what happened and what to do.
 */
public final class CohortException extends RuntimeException {
  private static final long serialVersionUID = 1L;

  /** What went wrong, chosen to map onto one canonical gRPC status. */
  public enum Kind {
    /** Malformed request. */
    INVALID_ARGUMENT,
    /** Unknown job, checkpoint, vhost or node. */
    NOT_FOUND,
    /** The object is in the wrong state for the request (e.g. job already running). */
    FAILED_PRECONDITION,
    /** A stale epoch or a barrier that was aborted. */
    ABORTED,
    /** An agent or node cannot be reached. */
    UNAVAILABLE,
    /** An image is corrupt or was tampered with. */
    DATA_LOSS,
    /** The image store is full. */
    RESOURCE_EXHAUSTED,
    /** A phase did not finish in time. */
    DEADLINE_EXCEEDED,
    /** A bug or an unexpected failure of a tool. */
    INTERNAL,
    /** The caller may not touch this job or checkpoint (it is another user's). */
    PERMISSION_DENIED,
    /** The call carries no identity the daemon can trust. */
    UNAUTHENTICATED
  }

  private final Kind kind;

  public CohortException(Kind kind, String message) {
    super(message);
    this.kind = kind;
  }

  public CohortException(Kind kind, String message, Throwable cause) {
    super(message, cause);
    this.kind = kind;
  }

  public Kind kind() {
    return kind;
  }

  public static CohortException invalid(String fmt, Object... args) {
    return new CohortException(Kind.INVALID_ARGUMENT, String.format(fmt, args));
  }

  public static CohortException notFound(String fmt, Object... args) {
    return new CohortException(Kind.NOT_FOUND, String.format(fmt, args));
  }

  public static CohortException precondition(String fmt, Object... args) {
    return new CohortException(Kind.FAILED_PRECONDITION, String.format(fmt, args));
  }

  public static CohortException dataLoss(String fmt, Object... args) {
    return new CohortException(Kind.DATA_LOSS, String.format(fmt, args));
  }

  public static CohortException denied(String fmt, Object... args) {
    return new CohortException(Kind.PERMISSION_DENIED, String.format(fmt, args));
  }

  public static CohortException internal(String message, Throwable cause) {
    return new CohortException(Kind.INTERNAL, message, cause);
  }
}
