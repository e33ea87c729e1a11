package io.cohort.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
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
 * Runs the real `./cohort` CLI and other commands for the benchmarks, with a private Cohort home.
 * Every call is a new process, as a user's would be; the figures come from the coordinator's own
 * timings (in the JSON answers), so the CLI's start-up is not counted.
 */
final class Cli {
  final Path repo;
  final Path home;

  /** More environment for every command (and so for the daemons `cohort cluster` starts). */
  private final Map<String, String> env;

  /** What every command runs under (another user: {@link #as}); empty: as this process. */
  private final List<String> wrapper;

  Cli(Path repo, Path home) {
    this(repo, home, Map.of());
  }

  Cli(Path repo, Path home, Map<String, String> env) {
    this(repo, home, env, List.of());
  }

  private Cli(Path repo, Path home, Map<String, String> env, List<String> wrapper) {
    this.repo = repo;
    this.home = home;
    this.env = Map.copyOf(env);
    this.wrapper = List.copyOf(wrapper);
  }

  /**
   * The same CLI run as the account {@code uid}:{@code gid} (its groups too), with a clean
   * environment but for COHORT_HOME: as that user would run it. The checkout must be readable by
   * others.
   */
  Cli as(int uid, int gid) {
    return new Cli(
        repo,
        home,
        env,
        List.of(
            "setpriv",
            "--reuid=" + uid,
            "--regid=" + gid,
            "--init-groups",
            "env",
            "-i",
            "PATH=/usr/local/bin:/usr/bin:/bin",
            "COHORT_HOME=" + home));
  }

  /** The outcome of one command. */
  record Result(int rc, String out, String err) {
    Result ok(List<String> cmd) {
      if (rc != 0) {
        throw new IllegalStateException(
            String.join(" ", cmd) + " exited " + rc + ":\n" + err + out);
      }
      return this;
    }

    JsonObject json() {
      return JsonParser.parseString(out.strip().lines().reduce((a, b) -> b).orElse("{}"))
          .getAsJsonObject();
    }
  }

  /** `cohort ARGS`, which must succeed. */
  Result cohort(String... args) {
    List<String> cmd = new ArrayList<>(List.of(repo.resolve("cohort").toString()));
    cmd.addAll(List.of(args));
    return exec(cmd, Duration.ofMinutes(30)).ok(cmd);
  }

  /** Any command, which must succeed. */
  Result must(String... cmd) {
    return exec(List.of(cmd), Duration.ofMinutes(30)).ok(List.of(cmd));
  }

  /** Any command; its outcome. */
  Result exec(List<String> cmd, Duration timeout) {
    try {
      Path out = Files.createTempFile("cohort-bench", ".out");
      Path err = Files.createTempFile("cohort-bench", ".err");
      try {
        Process p = builder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
          p.destroyForcibly();
          throw new IllegalStateException(String.join(" ", cmd) + " took over " + timeout);
        }
        return new Result(
            p.exitValue(),
            Files.readString(out, StandardCharsets.UTF_8),
            Files.readString(err, StandardCharsets.UTF_8));
      } finally {
        Files.deleteIfExists(out);
        Files.deleteIfExists(err);
      }
    } catch (IOException e) {
      throw new IllegalStateException("cannot run " + cmd + ": " + e.getMessage(), e);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new IllegalStateException("interrupted", e);
    }
  }

  /**
   * Starts `cohort ARGS` and returns at once: a client the benchmark may kill. Its output (both
   * streams) goes to {@code out}.
   */
  Process start(Path out, String... args) {
    List<String> cmd = new ArrayList<>(List.of(repo.resolve("cohort").toString()));
    cmd.addAll(List.of(args));
    try {
      return builder(cmd).redirectErrorStream(true).redirectOutput(out.toFile()).start();
    } catch (IOException e) {
      throw new IllegalStateException("cannot run " + cmd + ": " + e.getMessage(), e);
    }
  }

  private ProcessBuilder builder(List<String> cmd) {
    List<String> all = new ArrayList<>(wrapper);
    all.addAll(cmd);
    ProcessBuilder pb =
        new ProcessBuilder(all)
            .directory(repo.toFile())
            // Not a pipe left open: `cohort run` would read it for the job until its end.
            .redirectInput(ProcessBuilder.Redirect.from(new java.io.File("/dev/null")));
    pb.environment().putAll(env);
    pb.environment().put("COHORT_HOME", home.toString());
    return pb;
  }

  /** Milliseconds a command takes, wall clock; it must succeed. */
  double timed(String... cmd) {
    long t0 = System.nanoTime();
    must(cmd);
    return (System.nanoTime() - t0) / 1e6;
  }

  /** Starts a job detached on {@code nodes}; returns its id. */
  String run(String nodes, int slots, String... command) {
    return run(nodes, slots, List.of(), command);
  }

  /** Starts a job detached on {@code nodes} with more options of `cohort run`; returns its id. */
  String run(String nodes, int slots, List<String> options, String... command) {
    List<String> args =
        new ArrayList<>(
            List.of(
                "run", "--detach", "--json", "--nodes", nodes, "--slots", Integer.toString(slots)));
    args.addAll(options);
    args.add("--");
    args.addAll(List.of(command));
    return cohort(args.toArray(String[]::new)).json().get("job").getAsString();
  }

  /**
   * `cohort run` attached, as a user runs a job to its end: returns its output. (Not `run --detach`
   * then `cohort wait`: that second JVM would start up on the node's cores while the job runs; on 2
   * cores it made a 5 s MPI ping-pong 18 % slower.)
   */
  String runToEnd(String nodes, int slots, String... command) {
    List<String> args =
        new ArrayList<>(List.of("run", "--nodes", nodes, "--slots", Integer.toString(slots), "--"));
    args.addAll(List.of(command));
    return cohort(args.toArray(String[]::new)).out();
  }

  /** The job as `cohort ps --json` shows it. */
  JsonObject job(String id) {
    for (JsonElement e : JsonParser.parseString(cohort("ps", "--json").out).getAsJsonArray()) {
      if (e.getAsJsonObject().get("job_id").getAsString().equals(id)) {
        return e.getAsJsonObject();
      }
    }
    throw new IllegalStateException("job " + id + " is not listed");
  }

  /** The full record (with every phase's timing) of a checkpoint. */
  JsonObject checkpointRecord(String job, String ckpt) {
    JsonArray all =
        JsonParser.parseString(cohort("checkpoints", job, "--json").out).getAsJsonArray();
    for (JsonElement e : all) {
      if (e.getAsJsonObject().get("checkpoint_id").getAsString().equals(ckpt)) {
        return e.getAsJsonObject();
      }
    }
    throw new IllegalStateException("checkpoint " + ckpt + " is not listed");
  }

  /** The output log of a job's head vhost on a node of the emulated cluster. */
  Path log(String node, String job) {
    return home.resolve("cluster/nodes/" + node + "/vhosts/" + job + "-0/output.log");
  }

  /** Waits until a job's output (on its first node) contains {@code text}. */
  void awaitOutput(String node, String job, String text, Duration timeout) {
    awaitOutput(node, job, text, 1, timeout);
  }

  /**
   * Waits until a job's output (on its first node) contains {@code text} {@code times} times (once
   * from each of its ranks, say).
   */
  void awaitOutput(String node, String job, String text, int times, Duration timeout) {
    long deadline = System.nanoTime() + timeout.toNanos();
    while (true) {
      try {
        if (Files.exists(log(node, job))
            && count(Files.readString(log(node, job)), text) >= times) {
          return;
        }
        if (System.nanoTime() > deadline) {
          throw new IllegalStateException(
              String.format(
                  "job %s did not print '%s' %d time(s) within %s", job, text, times, timeout));
        }
        Thread.sleep(100);
      } catch (IOException e) {
        throw new IllegalStateException(e);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new IllegalStateException(e);
      }
    }
  }

  private static int count(String s, String text) {
    int n = 0;
    for (int at = s.indexOf(text); at >= 0; at = s.indexOf(text, at + text.length())) {
      n++;
    }
    return n;
  }
}
