package io.cohort.agent;

/** CRIU failed; carries its exit status and the tail of its log, which says why. */
final class CriuException extends Exception {
  private static final long serialVersionUID = 1L;

  private final int exitCode;
  private final String logTail;

  CriuException(String what, int exitCode, String logTail) {
    super(what + " (criu exit " + exitCode + ")" + (logTail.isEmpty() ? "" : ":\n" + logTail));
    this.exitCode = exitCode;
    this.logTail = logTail;
  }

  int exitCode() {
    return exitCode;
  }

  String logTail() {
    return logTail;
  }
}
