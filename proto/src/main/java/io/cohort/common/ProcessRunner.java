package io.cohort.common;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs an external command (iproute2, nsenter, CRIU's helpers) to completion within a deadline. The
 * one place where the daemons wait for a child process: a stuck command is killed at its deadline
 * and reported, so it can never hold a gRPC thread forever.
 *
 * <p>Output (stdout and stderr together) goes to a temporary file rather than a pipe, so a command
 * that writes a lot, or leaves a background child holding the pipe, cannot make the wait block.
 */
public final class ProcessRunner {
  /** Deadline of the short node-local commands (ip, nsenter, sysctl helpers). */
  public static final Duration SHORT = Duration.ofSeconds(20);

  /**
   * What a finished command did.
   *
   * @param exitCode its exit status
   * @param output its stdout and stderr, interleaved, stripped
   */
  public record Result(int exitCode, String output) {
    public boolean ok() {
      return exitCode == 0;
    }
  }

  private ProcessRunner() {}

  /**
   * Runs {@code cmd} with {@link #SHORT} as its deadline; see {@link #run(Duration, Map, List)}.
   */
  public static Result run(String... cmd) {
    return run(SHORT, Map.of(), List.of(cmd));
  }

  /**
   * Runs {@code cmd} with {@code env} added to this process's environment and waits at most {@code
   * deadline}. Throws DEADLINE_EXCEEDED (the command killed) past it, INTERNAL if it cannot be
   * started; a nonzero exit is returned, not thrown.
   */
  public static Result run(Duration deadline, Map<String, String> env, List<String> cmd) {
    return run(deadline, env, cmd, null);
  }

  /**
   * As {@link #run(Duration, Map, List)}, with {@code input} as the command's standard input
   * (written whole before the wait, so keep it small: a pipe holds 64 KiB; a command that exits
   * without reading it all is not an error).
   */
  public static Result run(Duration deadline, List<String> cmd, byte[] input) {
    return run(deadline, Map.of(), cmd, input);
  }

  /**
   * As {@link #run(Duration, List, byte[])}, for a program that writes little (less than a pipe's
   * 64 KiB: past that it would block until its deadline) and leaves no child holding its output
   * (MUNGE's {@code munge} and {@code unmunge}): the output comes through a pipe, read once it
   * exited. No temporary file, whose random name costs a command's fresh JVM about 10 ms
   * (SecureRandom's first use).
   */
  public static Result runSmall(Duration deadline, List<String> cmd, byte[] input) {
    return run(deadline, Map.of(), cmd, input, false);
  }

  private static Result run(
      Duration deadline, Map<String, String> env, List<String> cmd, byte[] input) {
    return run(deadline, env, cmd, input, true);
  }

  private static Result run(
      Duration deadline, Map<String, String> env, List<String> cmd, byte[] input, boolean toFile) {
    Path out = null;
    Process p = null;
    try {
      if (toFile) {
        out = Files.createTempFile("cohort-cmd-", ".out");
      }
      ProcessBuilder pb =
          new ProcessBuilder(cmd)
              .redirectErrorStream(true)
              .redirectInput(
                  input == null
                      ? ProcessBuilder.Redirect.from(new File("/dev/null"))
                      : ProcessBuilder.Redirect.PIPE)
              .redirectOutput(
                  toFile ? ProcessBuilder.Redirect.to(out.toFile()) : ProcessBuilder.Redirect.PIPE);
      pb.environment().putAll(env);
      p = pb.start();
      if (input != null) {
        try (var stdin = p.getOutputStream()) {
          stdin.write(input);
        } catch (IOException exitedFirst) {
          // the command did not read it all: its exit status says what it made of it
        }
      }
      if (!p.waitFor(deadline.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
        p.waitFor(5, TimeUnit.SECONDS);
        throw new CohortException(
            CohortException.Kind.DEADLINE_EXCEEDED,
            "`"
                + String.join(" ", cmd)
                + "` did not finish within "
                + deadline
                + " and was killed");
      }
      String output =
          toFile
              ? Files.readString(out, StandardCharsets.UTF_8)
              : new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
      return new Result(p.exitValue(), output.strip());
    } catch (IOException e) {
      throw CohortException.internal("cannot run " + cmd.get(0) + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      if (p != null) {
        p.destroyForcibly();
      }
      throw CohortException.internal("interrupted while running " + cmd.get(0), e);
    } finally {
      if (out != null) {
        try {
          Files.deleteIfExists(out);
        } catch (IOException ignored) {
          // a stray temporary file is harmless
        }
      }
    }
  }

  /**
   * Runs {@code cmd} (deadline {@link #SHORT}); a nonzero exit is an INTERNAL error whose message
   * starts with {@code what} and quotes the command and its output.
   */
  public static String check(String what, String... cmd) {
    Result r = run(cmd);
    if (!r.ok()) {
      throw CohortException.internal(
          what + ": `" + String.join(" ", cmd) + "` failed: " + r.output(), null);
    }
    return r.output();
  }
}
