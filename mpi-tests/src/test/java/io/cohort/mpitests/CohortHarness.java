package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.fail;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Drives the real `./cohort` CLI (a new JVM per command, as a user would) against a private Cohort
 * home under target/, and cleans up every process it started, even when a test fails.
 */
final class CohortHarness implements AutoCloseable {
  static final Path REPO =
      Path.of(System.getProperty("cohort.repo", "..")).toAbsolutePath().normalize();
  static final Path CLASSES = Path.of(System.getProperty("mpitests.classes", "target/classes"));
  static final Path RING = REPO.resolve("mpi-tests/target/mpi/ring");
  static final Path DECK = REPO.resolve("mpi-tests/target/mpi/deck");
  private static final java.io.File NO_INPUT = new java.io.File("/dev/null");
  static final String MPI_JAR = "/opt/cohort/openmpi-java/mpi.jar";
  static final String JNI = "/usr/lib/x86_64-linux-gnu/openmpi/lib";

  final Path home;
  final Map<String, String> extraEnv = new java.util.HashMap<>();

  CohortHarness(String name) throws IOException {
    this(Files.createTempDirectory(base(), name + "-"));
  }

  /** A harness whose Cohort home is {@code home} (an existing, empty directory). */
  CohortHarness(Path home) {
    this.home = home;
  }

  /** Where test homes go: not under /tmp, since a vhost has its own /tmp. */
  static Path base() throws IOException {
    Path base = REPO.resolve("mpi-tests/target/cohort-homes");
    Files.createDirectories(base);
    return base;
  }

  /** Starts a cohort command without waiting for it. */
  Process start(String... args) throws IOException {
    return start(ProcessBuilder.Redirect.DISCARD, args);
  }

  /** Starts a cohort command without waiting for it; its stderr goes to {@code err}. */
  Process start(ProcessBuilder.Redirect err, String... args) throws IOException {
    return start(ProcessBuilder.Redirect.DISCARD, err, args);
  }

  /** Starts a cohort command without waiting for it, its stdout and stderr redirected. */
  Process start(ProcessBuilder.Redirect out, ProcessBuilder.Redirect err, String... args)
      throws IOException {
    return start(NO_INPUT.toPath(), out, err, args);
  }

  /** Starts a cohort command without waiting for it, reading {@code input}. */
  Process start(
      Path input, ProcessBuilder.Redirect out, ProcessBuilder.Redirect err, String... args)
      throws IOException {
    return start(List.of(), input, out, err, args);
  }

  /**
   * A cohort command that a SIGINT interrupts as Ctrl-C would: a test run from a background job (as
   * CI runs it) inherits SIGINT ignored, and the JVM then keeps ignoring it.
   */
  Process startInterruptible(ProcessBuilder.Redirect err, String... args) throws IOException {
    return start(
        List.of("env", "--default-signal=INT"),
        NO_INPUT.toPath(),
        ProcessBuilder.Redirect.DISCARD,
        err,
        args);
  }

  private Process start(
      List<String> prefix,
      Path input,
      ProcessBuilder.Redirect out,
      ProcessBuilder.Redirect err,
      String... args)
      throws IOException {
    List<String> cmd = new ArrayList<>(prefix);
    cmd.add(REPO.resolve("cohort").toString());
    cmd.addAll(List.of(args));
    ProcessBuilder pb =
        new ProcessBuilder(cmd)
            .directory(REPO.toFile())
            .redirectInput(input.toFile())
            .redirectOutput(out)
            .redirectError(err);
    pb.environment().put("COHORT_HOME", home.toString());
    return pb.start();
  }

  /** The outcome of one CLI command. */
  record Result(int rc, String out, String err) {
    Result ok() {
      if (rc != 0) {
        fail("cohort exited " + rc + "\nstdout: " + out + "\nstderr: " + err);
      }
      return this;
    }

    JsonObject json() {
      return JsonParser.parseString(out.strip().lines().reduce((a, b) -> b).orElse("{}"))
          .getAsJsonObject();
    }
  }

  Result cohort(String... args) {
    return cohort(Duration.ofMinutes(5), args);
  }

  Result cohort(Duration timeout, String... args) {
    return cohortIn(REPO, timeout, args);
  }

  /** `cohort ARGS` run from {@code dir}. */
  Result cohortIn(Path dir, Duration timeout, String... args) {
    return cohortIn(dir, NO_INPUT.toPath(), timeout, args);
  }

  /** `cohort ARGS` with {@code input} as its standard input. */
  Result cohortWithInput(Path input, String... args) {
    return cohortIn(REPO, input, Duration.ofMinutes(5), args);
  }

  /** `cohort ARGS` run from {@code dir}, reading {@code input}. */
  Result cohortIn(Path dir, Path input, Duration timeout, String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(REPO.resolve("cohort").toString());
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile());
    Map<String, String> env = pb.environment();
    env.putAll(extraEnv);
    env.put("COHORT_HOME", home.toString());
    env.remove("OMPI_ALLOW_RUN_AS_ROOT");
    env.remove("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM");
    try {
      Path out = Files.createTempFile(home, "out", ".txt");
      Path err = Files.createTempFile(home, "err", ".txt");
      Process p =
          pb.redirectOutput(out.toFile())
              .redirectError(err.toFile())
              .redirectInput(input.toFile())
              .start();
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly().waitFor();
        fail("cohort " + String.join(" ", args) + " did not finish within " + timeout);
      }
      Result r = new Result(p.exitValue(), Files.readString(out), Files.readString(err));
      Files.delete(out);
      Files.delete(err);
      return r;
    } catch (IOException e) {
      throw new java.io.UncheckedIOException(e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException(e);
    }
  }

  /** Starts a job detached and returns its id. */
  String runDetached(String... command) {
    List<String> args = new ArrayList<>(List.of("run", "--detach", "--json", "--"));
    args.addAll(List.of(command));
    return cohort(args.toArray(String[]::new)).ok().json().get("job").getAsString();
  }

  /**
   * The job's standard output across restarts: what a reference run outside Cohort prints ({@link
   * ReferenceRuns}), which leaves stderr to mpirun's own warnings (a launch race may add one to
   * either run).
   */
  String log(String job) {
    return cohort("logs", "--stdout", job).ok().out;
  }

  /** The job's stdout and stderr, interleaved as they were written. */
  String logBoth(String job) {
    return cohort("logs", job).ok().out;
  }

  /** Waits until the job's output contains {@code text}. */
  void awaitOutput(String job, String text, Duration timeout) throws InterruptedException {
    awaitFile(logPath(job), text, timeout);
  }

  /** Waits until {@code file} contains {@code text} (a job's output log on some node). */
  static void awaitFile(Path file, String text, Duration timeout) throws InterruptedException {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (System.nanoTime() < deadline) {
      if (read(file).contains(text)) {
        return;
      }
      Thread.sleep(50);
    }
    fail(file + " did not get '" + text + "' within " + timeout + "; it holds:\n" + read(file));
  }

  private static String read(Path file) {
    try {
      return Files.readString(file);
    } catch (IOException e) {
      return "";
    }
  }

  /** The output log of a job's head vhost on a node of the emulated cluster. */
  Path clusterLog(String node, String job) {
    return home.resolve("cluster/nodes/" + node + "/vhosts/" + job + "-0/output.log");
  }

  /**
   * Starts an emulated cluster of this home, with names and addresses of its own, and {@code
   * options} of `cluster up`.
   */
  void clusterUp(int nodes, String prefix, String subnet, String... options) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "cluster",
                "up",
                "--nodes",
                Integer.toString(nodes),
                "--prefix",
                prefix,
                "--subnet",
                subnet));
    args.addAll(List.of(options));
    cohort(Duration.ofMinutes(3), args.toArray(String[]::new)).ok();
  }

  /** The pid of a daemon of the emulated cluster ("coordinator", "n1", ...). */
  long daemonPid(String name) throws IOException {
    for (JsonElement e :
        JsonParser.parseString(Files.readString(home.resolve("cluster/cluster.json")))
            .getAsJsonObject()
            .getAsJsonArray("processes")) {
      if (e.getAsJsonObject().get("name").getAsString().equals(name)) {
        return e.getAsJsonObject().get("pid").getAsLong();
      }
    }
    throw new AssertionError("no daemon " + name);
  }

  /** The host pid of a vhost's init on a node of the emulated cluster, from its record. */
  long vhostInit(String node, String vhost) throws IOException {
    return JsonParser.parseString(
            Files.readString(
                home.resolve("cluster/nodes/" + node + "/vhosts/" + vhost + "/record.json")))
        .getAsJsonObject()
        .get("pid")
        .getAsLong();
  }

  /** Waits (at most a minute) until {@code n} nodes of the cluster are up. */
  void awaitNodesUp(int n) throws InterruptedException {
    long deadline = System.nanoTime() + Duration.ofSeconds(60).toNanos();
    while (System.nanoTime() < deadline) {
      Result r = cohort("nodes", "--json");
      if (r.rc() == 0) {
        long up = 0;
        for (JsonElement e : JsonParser.parseString(r.out()).getAsJsonArray()) {
          JsonObject o = e.getAsJsonObject();
          up += o.has("alive") && o.get("alive").getAsBoolean() ? 1 : 0;
        }
        if (up == n) {
          return;
        }
      }
      Thread.sleep(250);
    }
    fail(n + " nodes did not come up");
  }

  /** Removes this home's cluster (if any), then everything else of the harness. */
  void closeCluster() throws IOException {
    try {
      cohort(Duration.ofMinutes(2), "cluster", "down");
    } finally {
      close();
    }
  }

  Path logPath(String job) {
    return home.resolve("agent/vhosts/" + job + "-0/output.log");
  }

  String readLog(String job) {
    return read(logPath(job));
  }

  JsonObject checkpoint(String job, boolean stop) {
    Result r =
        stop ? cohort("checkpoint", job, "--stop", "--json") : cohort("checkpoint", job, "--json");
    return r.ok().json();
  }

  JsonArray checkpoints(String job) {
    return JsonParser.parseString(cohort("checkpoints", job, "--json").ok().out).getAsJsonArray();
  }

  JsonObject job(String job) {
    for (JsonElement e : JsonParser.parseString(cohort("ps", "--json").ok().out).getAsJsonArray()) {
      if (e.getAsJsonObject().get("job_id").getAsString().equals(job)) {
        return e.getAsJsonObject();
      }
    }
    return fail("job " + job + " not listed by cohort ps");
  }

  String state(String job) {
    return job(job).get("state").getAsString();
  }

  int await(String job) {
    return cohort(Duration.ofMinutes(5), "wait", job).rc;
  }

  /** The image directory of a committed checkpoint's (only) vhost. */
  Path imageDir(String ckpt) {
    String job = ckpt.substring(0, ckpt.indexOf('.'));
    return home.resolve("agent/images/" + ckpt + "/" + job + "-0");
  }

  static String[] cRing(int ranks, int iterations, int delayMs, String... mca) {
    List<String> cmd = new ArrayList<>(List.of("mpirun", "-np", Integer.toString(ranks)));
    cmd.addAll(List.of(mca));
    cmd.addAll(List.of(RING.toString(), Integer.toString(iterations), Integer.toString(delayMs)));
    return cmd.toArray(String[]::new);
  }

  static String[] javaRing(int ranks, int iterations, int delayMs) {
    return new String[] {
      "mpirun",
      "-np",
      Integer.toString(ranks),
      "java",
      "-XX:+UseSerialGC",
      "-Xmx128m",
      "-XX:TieredStopAtLevel=1",
      "-cp",
      CLASSES + ":" + MPI_JAR,
      "-Djava.library.path=" + JNI,
      "io.cohort.mpitests.Ring",
      Integer.toString(iterations),
      Integer.toString(delayMs)
    };
  }

  /**
   * Kills every running job of this home (through the CLI, then directly by the pids the agent
   * recorded, in case the CLI itself is broken) and removes the home.
   */
  @Override
  public void close() throws IOException {
    killJobs();
    deleteTree(home);
  }

  /** Kills every running job of this home; never touches processes it did not start. */
  void killJobs() throws IOException {
    try {
      JsonArray jobs = JsonParser.parseString(cohort("ps", "--json").out).getAsJsonArray();
      for (JsonElement e : jobs) {
        JsonObject j = e.getAsJsonObject();
        if ("JOB_STATE_RUNNING".equals(j.get("state").getAsString())) {
          cohort("kill", j.get("job_id").getAsString());
        }
      }
    } catch (RuntimeException e) {
      System.err.println("cleanup: cohort ps/kill failed: " + e);
    }
    Path vhosts = home.resolve("agent/vhosts");
    if (Files.isDirectory(vhosts)) {
      try (Stream<Path> dirs = Files.list(vhosts)) {
        for (Path d : dirs.toList()) {
          killRecorded(d.resolve("record.json"));
        }
      }
    }
  }

  private static void killRecorded(Path record) {
    try {
      JsonObject r = JsonParser.parseString(Files.readString(record)).getAsJsonObject();
      if (!r.has("pid")) {
        return;
      }
      long pid = r.get("pid").getAsLong();
      long start = r.get("pid_start_ticks").getAsLong();
      String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
      String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
      if (Long.parseLong(f[19]) == start) { // the very process we started, not a reused pid
        ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
      }
    } catch (IOException | RuntimeException gone) {
      // no record or no such process: nothing to clean
    }
  }

  static void deleteTree(Path root) throws IOException {
    if (!Files.exists(root)) {
      return;
    }
    try (Stream<Path> walk = Files.walk(root)) {
      for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
        Files.deleteIfExists(p);
      }
    }
  }
}
