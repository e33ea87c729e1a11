package io.cohort.common;

/**
 * Limits of a job's standard input, which travels whole in the Run request (and from the
 * coordinator to the head vhost's agent) and is stored beside the job's output log.
 */
public final class JobInput {
  /** The largest standard input a job may be given; the daemons refuse more. */
  public static final int MAX_BYTES = 64 << 20;

  /**
   * The largest gRPC message the daemons accept: a Run request with the largest stdin, plus room
   * for the rest of the request (the command and its environment).
   */
  public static final int MAX_MESSAGE_BYTES = MAX_BYTES + (4 << 20);

  private JobInput() {}

  /** Refuses a standard input over {@link #MAX_BYTES}. */
  public static void check(long bytes) {
    if (bytes > MAX_BYTES) {
      throw CohortException.invalid(
          "the job's standard input is %d bytes, more than the %d MiB a job may be given: give "
              + "the program the file's path instead, or cut the input",
          bytes, MAX_BYTES >> 20);
    }
  }
}
