package io.cohort.agent;

import java.nio.file.Path;
import java.util.Optional;

/**
 * CRIU failed; carries its exit status and why: for a dump or restore, the cause read from its log
 * ({@link CriuLogCause}) and where that log is.
 */
final class CriuException extends Exception {
  private static final long serialVersionUID = 1L;

  private final int exitCode;
  private final transient CriuLogCause.Cause reason;
  private final transient Path log;

  /** CRIU could not be run or did not finish; {@code output} is what it printed, if anything. */
  CriuException(String what, int exitCode, String output) {
    super(what + " (criu exit " + exitCode + ")" + (output.isEmpty() ? "" : ":\n" + output));
    this.exitCode = exitCode;
    this.reason = new CriuLogCause.Cause(CriuLogCause.Kind.NONE, what);
    this.log = null;
  }

  /** CRIU ran and failed; its log at {@code log} says why. The message is one line. */
  CriuException(int exitCode, Path log) {
    this(exitCode, CriuLogCause.of(log), log);
  }

  private CriuException(int exitCode, CriuLogCause.Cause cause, Path log) {
    super(cause.line() + ". Full CRIU log: " + log);
    this.exitCode = exitCode;
    this.reason = cause;
    this.log = log;
  }

  int exitCode() {
    return exitCode;
  }

  /** Why CRIU failed, in one line. */
  CriuLogCause.Cause reason() {
    return reason;
  }

  /** CRIU's full log, if it ran far enough to write one. */
  Optional<Path> log() {
    return Optional.ofNullable(log);
  }
}
