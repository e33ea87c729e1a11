package io.cohort.cli;

import io.cohort.common.CohortException;
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

  /**
   * The cluster CA's certificate that the coordinator at {@code address} must present a certificate
   * of: $COHORT_CA, else the emulated cluster's when {@code address} is its coordinator, else
   * {@code $COHORT_HOME/tls/ca.crt}. Refuses, saying what to do, when it is not there.
   */
  static Path trustedCa(Embedded.Settings settings, String address) {
    String env = System.getenv("COHORT_CA");
    Path ca;
    if (env != null && !env.isBlank()) {
      ca = Path.of(env);
    } else if (Files.exists(EmulatedCluster.tlsDir(settings.home()).resolve(ClusterCa.CA_CERT))) {
      // A cluster emulated in this home: its coordinator's TCP port (the address file names its
      // Unix socket, so the address alone does not tell).
      ca = EmulatedCluster.tlsDir(settings.home()).resolve(ClusterCa.CA_CERT);
    } else {
      ca = settings.home().resolve("tls").resolve(ClusterCa.CA_CERT);
    }
    if (!Files.isReadable(ca)) {
      throw CohortException.precondition(
          "cannot read the cluster CA's certificate %s, which the coordinator at %s must prove "
              + "itself with: copy the cluster's ca.crt (from `cohort ca init`, on the "
              + "coordinator's machine) there, or set COHORT_CA to its path",
          ca, address);
    }
    return ca;
  }
}
