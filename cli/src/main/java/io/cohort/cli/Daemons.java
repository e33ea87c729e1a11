package io.cohort.cli;

import io.cohort.common.CohortException;
import java.net.InetSocketAddress;

/** What the daemon commands share. */
final class Daemons {
  private Daemons() {}

  /**
   * Daemons log at info unless COHORT_LOG says otherwise, each line with the time of day; call
   * before any logger exists. (Only the daemons: the first SimpleDateFormat loads the locale data,
   * 50 ms of a 0.3 s `cohort ps`.)
   */
  static void logAtInfo() {
    if (System.getenv("COHORT_LOG") == null) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "info");
    }
    System.setProperty("org.slf4j.simpleLogger.showDateTime", "true");
    System.setProperty("org.slf4j.simpleLogger.dateTimeFormat", "HH:mm:ss.SSS");
  }

  static InetSocketAddress parse(String hostPort) {
    int colon = hostPort.lastIndexOf(':');
    if (colon <= 0) {
      throw CohortException.invalid("'%s' is not HOST:PORT", hostPort);
    }
    try {
      return new InetSocketAddress(
          hostPort.substring(0, colon), Integer.parseInt(hostPort.substring(colon + 1)));
    } catch (NumberFormatException e) {
      throw CohortException.invalid("'%s' is not HOST:PORT", hostPort);
    }
  }
}
