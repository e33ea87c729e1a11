package io.cohort.common;

import java.util.regex.Pattern;

/**
 * Identifier formats. A job id is a decimal number; a checkpoint id is "JOB.EPOCH"; a vhost id is
 * "JOB-INDEX". Checking them early keeps malformed input out of paths and logs.
 */
public final class Ids {
  private static final Pattern JOB = Pattern.compile("[1-9][0-9]{0,17}");
  private static final Pattern CHECKPOINT =
      Pattern.compile("([1-9][0-9]{0,17})\\.([1-9][0-9]{0,17})");
  private static final Pattern VHOST = Pattern.compile("[1-9][0-9]{0,17}-[0-9]{1,6}");

  private Ids() {}

  public static boolean isJob(String s) {
    return s != null && JOB.matcher(s).matches();
  }

  public static boolean isCheckpoint(String s) {
    return s != null && CHECKPOINT.matcher(s).matches();
  }

  public static String requireJob(String s) {
    if (!isJob(s)) {
      throw CohortException.invalid(
          "'%s' is not a job id (job ids are numbers, see `cohort ps`)", s);
    }
    return s;
  }

  public static String requireCheckpoint(String s) {
    if (!isCheckpoint(s)) {
      throw CohortException.invalid(
          "'%s' is not a checkpoint id (checkpoint ids look like JOB.EPOCH, see `cohort checkpoints`)",
          s);
    }
    return s;
  }

  public static String requireVhost(String s) {
    if (s == null || !VHOST.matcher(s).matches()) {
      throw CohortException.invalid("'%s' is not a vhost id", s);
    }
    return s;
  }

  public static String checkpoint(String job, long epoch) {
    return job + "." + epoch;
  }

  public static String jobOfCheckpoint(String checkpoint) {
    return requireCheckpoint(checkpoint).substring(0, checkpoint.indexOf('.'));
  }

  public static long epochOfCheckpoint(String checkpoint) {
    return Long.parseLong(requireCheckpoint(checkpoint).substring(checkpoint.indexOf('.') + 1));
  }

  public static String vhost(String job, int index) {
    return job + "-" + index;
  }
}
