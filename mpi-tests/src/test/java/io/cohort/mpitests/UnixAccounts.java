package io.cohort.mpitests;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Real unprivileged accounts for a test (`useradd --system`, names starting "cohortit"), each
 * removed by {@link #close} even when the test failed; and commands run as one of them, with
 * exactly its uid, gid and groups (`setpriv --init-groups`) and a clean environment, among them the
 * `cohort` CLI ({@link #cli}).
 */
final class UnixAccounts implements AutoCloseable {
  /** An account: its name and ids. */
  record Account(String name, int uid, int gid) {}

  private final List<String> created = new ArrayList<>();
  private OpenCopies copies;

  /** Creates an account named "cohortit" + {@code tag} + a random suffix, with no home. */
  Account create(String tag) throws IOException, InterruptedException {
    return create(tag, "/usr/sbin/nologin");
  }

  /**
   * As {@link #create(String)}, with {@code shell} as its login shell: a cluster user's, for a job
   * whose mpirun starts daemons on other nodes (Open MPI's rsh launcher looks at the user's shell
   * and warns, in the job's output, about one it does not know, such as nologin). No password: it
   * cannot log in all the same.
   */
  Account create(String tag, String shell) throws IOException, InterruptedException {
    String name = "cohortit" + tag + suffix();
    created.add(name); // before useradd: a half-made account is removed too
    run(List.of("useradd", "--system", "--no-create-home", "--shell", shell, name));
    return new Account(name, id("-u", name), id("-g", name));
  }

  private static String suffix() {
    SecureRandom r = new SecureRandom();
    StringBuilder b = new StringBuilder();
    for (int i = 0; i < 5; i++) {
      b.append((char) ('a' + r.nextInt(26)));
    }
    return b.toString();
  }

  private static int id(String flag, String name) throws IOException, InterruptedException {
    return Integer.parseInt(run(List.of("id", flag, name)).strip());
  }

  /** {@code cmd} as {@code who}: exactly its uid, gid and groups, from /. */
  static CohortHarness.Result as(Account who, List<String> cmd) {
    List<String> all =
        new ArrayList<>(
            List.of("setpriv", "--reuid=" + who.uid(), "--regid=" + who.gid(), "--init-groups"));
    all.addAll(cmd);
    return exec(all, Map.of());
  }

  /** `cohort ARGS` as {@code who}, with COHORT_HOME {@code home} and nothing else inherited. */
  static CohortHarness.Result cohortAs(Account who, Path cohort, Path home, String... args) {
    List<String> cmd =
        new ArrayList<>(
            List.of(
                "env",
                "-i",
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "COHORT_HOME=" + home,
                cohort.toString()));
    cmd.addAll(List.of(args));
    return as(who, cmd);
  }

  /**
   * The `cohort` CLI the accounts run: a copy of this checkout's (which may sit under a directory
   * they cannot enter), removed with the accounts.
   */
  Path cli() throws IOException {
    return open().cli();
  }

  /** A copy of {@code file} that the accounts can run, at {@code name}; removed with them. */
  Path open(Path file, String name) throws IOException {
    return open().copy(file, name);
  }

  private OpenCopies open() throws IOException {
    if (copies == null) {
      copies = new OpenCopies();
    }
    return copies;
  }

  /** Runs {@code cmd} (at most 5 minutes) and returns its exit code and output. */
  static CohortHarness.Result exec(List<String> cmd, Map<String, String> env) {
    try {
      Path out = Files.createTempFile("acct", ".out");
      Path err = Files.createTempFile("acct", ".err");
      try {
        ProcessBuilder pb =
            new ProcessBuilder(cmd)
                .directory(Path.of("/").toFile())
                .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")))
                .redirectOutput(out.toFile())
                .redirectError(err.toFile());
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(Duration.ofMinutes(5).toMillis(), TimeUnit.MILLISECONDS)) {
          p.destroyForcibly().waitFor();
          throw new AssertionError(String.join(" ", cmd) + " did not finish in 5 minutes");
        }
        return new CohortHarness.Result(
            p.exitValue(),
            Files.readString(out, StandardCharsets.UTF_8),
            Files.readString(err, StandardCharsets.UTF_8));
      } finally {
        Files.deleteIfExists(out);
        Files.deleteIfExists(err);
      }
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  private static String run(List<String> cmd) throws IOException, InterruptedException {
    CohortHarness.Result r = exec(cmd, Map.of());
    if (r.rc() != 0) {
      throw new IOException(String.join(" ", cmd) + " failed (" + r.rc() + "): " + r.err());
    }
    return r.out();
  }

  /** Brings {@code cohort}'s cluster down, then removes the accounts (each if there). */
  static void closeAll(CohortHarness cohort, UnixAccounts accounts) throws IOException {
    try {
      if (cohort != null) {
        cohort.closeCluster();
      }
    } finally {
      if (accounts != null) {
        accounts.close();
      }
    }
  }

  /** Removes every account this made (their processes first), reporting the first failure. */
  @Override
  public void close() throws IOException {
    IOException first = null;
    for (String name : created) {
      exec(List.of("pkill", "-KILL", "-u", name), Map.of()); // their own processes only
      CohortHarness.Result r = exec(List.of("userdel", name), Map.of());
      // 6: the account does not exist (useradd failed before making it)
      if (r.rc() != 0 && r.rc() != 6 && first == null) {
        first = new IOException("userdel " + name + " failed: " + r.err());
      }
    }
    created.clear();
    if (copies != null) {
      copies.close();
      copies = null;
    }
    if (first != null) {
      throw first;
    }
  }
}
