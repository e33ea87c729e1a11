package io.cohort.cli;

import io.cohort.common.CohortException;
import java.net.InetSocketAddress;

/** What the daemon commands share. */
final class Daemons {
  private Daemons() {}

  /** Daemons log at info unless COHORT_LOG says otherwise; call before any logger exists. */
  static void logAtInfo() {
    if (System.getenv("COHORT_LOG") == null) {
      System.setProperty("org.slf4j.simpleLogger.defaultLogLevel", "info");
    }
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
