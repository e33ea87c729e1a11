package io.cohort.agent;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.cohort.proto.v1.Owner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;

/**
 * A real vhost for the credential tests: native/build/cohort-init runs a command as an account (as
 * the agent launches it), and CRIU dumps it as the agent does. Needs root, CRIU and the native
 * build (the module's build runs make); tests that use it are skipped without them, saying why.
 */
final class RealVhost implements AutoCloseable {
  static final Path NATIVE = Path.of("../native/build").toAbsolutePath().normalize();
  static final Path INIT = NATIVE.resolve("cohort-init");
  static final Path CRIU =
      Path.of(System.getenv().getOrDefault("COHORT_CRIU", "/opt/cohort/bin/criu"));

  /** "nobody": an unprivileged account every Debian has. */
  static final int NOBODY = 65534;

  static final Owner NOBODY_OWNER =
      Owner.newBuilder().setUid(NOBODY).setGid(NOBODY).setUser("nobody").build();

  /** A program with three threads (main and two that sleep); prints "ready" once they run. */
  private static final String THREADS_C =
      """
      #include <pthread.h>
      #include <stdio.h>
      #include <unistd.h>
      static void *nap(void *arg) { (void)arg; for (;;) pause(); return NULL; }
      int main(void) {
        pthread_t t;
        for (int i = 0; i < 2; i++) if (pthread_create(&t, NULL, nap, NULL)) return 1;
        printf("ready\\n");
        fflush(stdout);
        for (;;) pause();
      }
      """;

  private static final Duration READY = Duration.ofSeconds(20);

  final Path dir;
  final long pid;

  private RealVhost(Path dir, long pid) {
    this.dir = dir;
    this.pid = pid;
  }

  static void assumeAvailable() {
    assumeTrue(LibC.INSTANCE.geteuid() == 0, "needs root (cohort-init and CRIU)");
    assumeTrue(Files.isExecutable(CRIU), "needs CRIU at " + CRIU + " (`cohort setup`)");
    assumeTrue(Files.isExecutable(INIT), "needs " + INIT + " (make -C native)");
  }

  /**
   * A directory for vhosts under the module's target/ (not /tmp: the vhost has its own), every
   * account may traverse.
   */
  static Path workDir(String name) throws IOException {
    Path d = Path.of("target", name + "-" + ProcessHandle.current().pid()).toAbsolutePath();
    deleteTree(d);
    Files.createDirectories(d);
    d.toFile().setExecutable(true, false);
    d.toFile().setReadable(true, false);
    return d;
  }

  /** Compiles the three-thread program into {@code dir}; returns its path. */
  static Path threadsProgram(Path dir) throws IOException, InterruptedException {
    Path src = dir.resolve("threads.c");
    Files.writeString(src, THREADS_C);
    Path exe = dir.resolve("threads");
    run(List.of("cc", "-pthread", "-o", exe.toString(), src.toString()));
    return exe;
  }

  /** {@code p} as one word of a shell script (a checkout's path may hold spaces). */
  static String quoted(Path p) {
    return "'" + p.toString().replace("'", "'\\''") + "'";
  }

  /**
   * Starts {@code sh -c script} in a new vhost as uid:gid (root: no drop), and waits until the log
   * holds "ready".
   */
  static RealVhost start(Path dir, int uid, int gid, String script)
      throws IOException, InterruptedException {
    List<String> argv = new ArrayList<>(List.of(INIT.toString(), "--hostname", "creds-test"));
    argv.addAll(
        List.of(
            "--log",
            dir.resolve("log").toString(),
            "--status",
            dir.resolve("status").toString(),
            "--cwd",
            dir.toString()));
    if (uid != 0) {
      argv.addAll(
          List.of("--uid", Integer.toString(uid), "--gid", Integer.toString(gid), "--groups", ""));
    }
    argv.addAll(List.of("--", "sh", "-c", script));
    String out = run(argv).strip();
    RealVhost v = new RealVhost(dir, Long.parseLong(out));
    long deadline = System.nanoTime() + READY.toNanos();
    while (!Files.readString(dir.resolve("log")).contains("ready")) {
      if (System.nanoTime() > deadline) {
        v.close();
        throw new IllegalStateException(
            "the vhost's command did not get ready: " + Files.readString(dir.resolve("log")));
      }
      Thread.sleep(20);
    }
    return v;
  }

  /** Dumps the vhost into {@code dir/img} as the agent does (the tree ends); returns it. */
  Path dump() throws IOException, InterruptedException {
    Path img = Files.createDirectories(dir.resolve("img"));
    List<String> argv =
        new ArrayList<>(
            List.of(CRIU.toString(), "dump", "-t", Long.toString(pid), "-D", img.toString()));
    argv.addAll(List.of("-o", "dump.log"));
    argv.addAll(CriuEngine.COMMON);
    ProcessBuilder pb = new ProcessBuilder(argv);
    Path built = NATIVE.resolve("libcohort-prlimit.so");
    if (Files.exists(built)) {
      // From a directory whose name holds a space, as a checkout's may: LD_PRELOAD by that path
      // would load nothing, and the dump of a job not root's would fail where root lacks
      // CAP_SYS_RESOURCE (as here).
      Path preload =
          Files.createDirectories(dir.resolve("native build")).resolve(built.getFileName());
      Files.copy(built, preload, StandardCopyOption.REPLACE_EXISTING);
      CriuEngine.preload(pb, preload);
    }
    Process p = pb.redirectErrorStream(true).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IllegalStateException(
          "criu dump failed: " + out + tail(img.resolve("dump.log"), 20));
    }
    return img;
  }

  @Override
  public void close() {
    ProcessIdentity.of(pid).ifPresent(ProcessIdentity::kill);
    // pid 1's death ends the vhost's pid namespace: every process of it is killed.
    ProcessHandle.of(pid).ifPresent(h -> h.onExit().join());
  }

  static String run(List<String> argv) throws IOException, InterruptedException {
    Process p = new ProcessBuilder(argv).redirectError(ProcessBuilder.Redirect.INHERIT).start();
    String out = new String(p.getInputStream().readAllBytes());
    if (p.waitFor() != 0) {
      throw new IllegalStateException(argv + " exited " + p.exitValue() + ": " + out);
    }
    return out;
  }

  /** Removes {@code d} and all below it, if it was made. */
  static void deleteTree(Path d) throws IOException {
    if (d != null && Files.exists(d)) {
      try (var walk = Files.walk(d)) {
        for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
          Files.delete(p);
        }
      }
    }
  }

  private static String tail(Path log, int lines) throws IOException {
    if (!Files.exists(log)) {
      return "";
    }
    List<String> all = Files.readAllLines(log);
    return "\n" + String.join("\n", all.subList(Math.max(0, all.size() - lines), all.size()));
  }
}
