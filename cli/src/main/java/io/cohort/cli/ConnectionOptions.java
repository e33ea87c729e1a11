package io.cohort.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * Which coordinator a command talks to: {@code --coordinator ADDR}, else $COHORT_COORDINATOR, else
 * the local emulated cluster when one is up, else the embedded single-node mode.
 */
final class ConnectionOptions {
  @Option(
      names = "--coordinator",
      paramLabel = "HOST:PORT",
      description =
          "the coordinator daemon to use (default: $COHORT_COORDINATOR, else the "
              + "local cluster if `cohort cluster up` ran, else the embedded single-node mode)")
  String coordinator;

  /** The coordinator's address, or null for the embedded mode. */
  String resolve(Embedded.Settings settings) {
    if (coordinator != null && !coordinator.isBlank()) {
      return coordinator;
    }
    String env = System.getenv("COHORT_COORDINATOR");
    if (env != null && !env.isBlank()) {
      return env;
    }
    Path cluster = EmulatedCluster.addressFile(settings.home());
    if (Files.isRegularFile(cluster)) {
      try {
        return Files.readString(cluster).strip();
      } catch (IOException e) {
        return null;
      }
    }
    return null;
  }
}
