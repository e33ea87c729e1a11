package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.ProcessRunner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs CRIU with the options verified for vhosts (docs/design.md, "CRIU options"). One instance per
 * agent; stateless apart from its configuration.
 */
final class CriuEngine implements Criu {
  /** Options shared by dump and restore: TCP, network lock, mounts. */
  private static final List<String> COMMON =
      List.of(
          "--tcp-established",
          "--network-lock",
          "nftables",
          "--ext-mount-map",
          "auto",
          "--enable-external-masters",
          "--enable-external-sharing",
          "-v3");

  /**
   * CRIU runs in a session of its own: a Ctrl-C on the terminal of the CLI (whose embedded agent
   * started it) must never kill CRIU in the middle of a dump or restore, which could leave the
   * job's network locked.
   */
  private static final List<String> SETSID = List.of("setsid");

  private static final Pattern VERSION = Pattern.compile("Version:\\s*([0-9][0-9.]*)");

  private final List<String> criu;
  private final Duration timeout;

  CriuEngine(List<String> criu, Duration timeout) {
    this.criu = List.copyOf(criu);
    this.timeout = timeout;
  }

  @Override
  public String version() throws CriuException {
    List<String> cmd = new ArrayList<>(criu);
    cmd.add("--version");
    ProcessRunner.Result r;
    try {
      r = ProcessRunner.run(ProcessRunner.SHORT, Map.of(), cmd);
    } catch (CohortException e) {
      throw new CriuException(e.getMessage() + "; run `cohort setup` to install CRIU", -1, "");
    }
    Matcher m = VERSION.matcher(r.output());
    if (!r.ok() || !m.find()) {
      throw new CriuException(
          "cannot run `" + String.join(" ", cmd) + "`", r.exitCode(), r.output());
    }
    return m.group(1);
  }

  @Override
  public Process startDump(DumpSpec spec) throws IOException {
    List<String> cmd = new ArrayList<>(SETSID);
    cmd.addAll(criu);
    cmd.addAll(
        List.of(
            "dump",
            "-t",
            Long.toString(spec.pid()),
            "-D",
            spec.images().toString(),
            "-W",
            spec.work().toString(),
            "-o",
            "dump.log",
            "--action-script",
            spec.actionScript().toString()));
    cmd.addAll(COMMON);
    cmd.addAll(spec.extra());
    if (spec.leaveRunning()) {
      cmd.add("--leave-running");
    }
    ProcessBuilder pb =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(spec.work().resolve("dump.out").toFile());
    pb.environment().putAll(spec.env());
    return pb.start();
  }

  @Override
  public Restored restore(Path images, Path work, List<String> extra)
      throws CriuException, IOException {
    Files.createDirectories(work);
    Path pidfile = work.resolve("restore.pid");
    Files.deleteIfExists(pidfile);
    List<String> cmd = new ArrayList<>(SETSID);
    cmd.addAll(criu);
    cmd.addAll(
        List.of(
            "restore",
            "-D",
            images.toString(),
            "-W",
            work.toString(),
            "-o",
            "restore.log",
            "-d",
            "--root",
            "/",
            "--pidfile",
            pidfile.toString()));
    cmd.addAll(COMMON);
    cmd.addAll(extra);
    long t0 = System.nanoTime();
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(work.resolve("restore.out").toFile())
            .start();
    int rc = waitFor(p, "restore");
    long ms = (System.nanoTime() - t0) / 1_000_000;
    if (rc != 0) {
      throw new CriuException(rc, work.resolve("restore.log"));
    }
    String pid = Files.readString(pidfile).strip();
    return new Restored(Long.parseLong(pid), ms);
  }

  private int waitFor(Process p, String what) throws CriuException {
    try {
      if (!p.waitFor(timeout.toMillis(), TimeUnit.MILLISECONDS)) {
        p.destroyForcibly();
        p.waitFor();
        throw new CriuException(
            "criu " + what + " did not finish within " + timeout + " and was killed", -1, "");
      }
      return p.exitValue();
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      p.destroyForcibly();
      throw new CriuException("interrupted while waiting for criu " + what, -1, "");
    }
  }
}
