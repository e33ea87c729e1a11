package io.cohort.agent;

import io.cohort.common.CohortException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Starts a vhost through native/cohort-init: the launcher creates the namespaces, forks the vhost's
 * pid 1, waits until the command has been exec'd and prints pid 1's host pid.
 */
final class VhostLauncher {
  private final Path initBinary;
  private final Duration timeout;

  VhostLauncher(Path initBinary, Duration timeout) {
    this.initBinary = initBinary;
    this.timeout = timeout;
  }

  /** Starts {@code command} in a new vhost; returns pid 1's host pid. */
  long launch(
      String hostname,
      Path log,
      Path status,
      String cwd,
      List<String> initOptions,
      List<String> command,
      Map<String, String> env) {
    if (!Files.isExecutable(initBinary)) {
      throw CohortException.precondition(
          "%s is missing: run `cohort setup` to build the native " + "programs", initBinary);
    }
    List<String> argv =
        new ArrayList<>(
            List.of(
                initBinary.toString(),
                "--hostname",
                hostname,
                "--log",
                log.toString(),
                "--status",
                status.toString(),
                "--cwd",
                cwd));
    argv.addAll(initOptions);
    argv.add("--");
    argv.addAll(command);
    Path errFile = null;
    try {
      errFile = Files.createTempFile(log.getParent(), ".launch-", ".err");
      ProcessBuilder pb =
          new ProcessBuilder(argv)
              .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
              .redirectError(errFile.toFile());
      pb.environment().clear();
      pb.environment().putAll(env);
      Process p = pb.start();
      // The launcher prints one line and exits once the command runs; pid 1 keeps none of its
      // descriptors, so waiting first cannot block on a full pipe.
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
        throw CohortException.internal(
            "cohort-init did not start the vhost within " + timeout, null);
      }
      String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
      String errText = Files.readString(errFile).strip();
      int rc = p.exitValue();
      if (rc == 127 || rc == 126) {
        throw CohortException.invalid(
            "cannot start the job: %s", errText.replaceFirst("^cohort-init: ", ""));
      }
      if (rc != 0) {
        throw CohortException.internal(
            "cannot create the virtual host (cohort-init exit " + rc + "): " + errText, null);
      }
      return Long.parseLong(out);
    } catch (IOException e) {
      throw CohortException.internal("cannot run " + initBinary + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw CohortException.internal("interrupted while starting the vhost", e);
    } finally {
      if (errFile != null) {
        try {
          Files.deleteIfExists(errFile);
        } catch (IOException ignored) {
          // a stray temporary file is harmless
        }
      }
    }
  }
}
