package io.cohort.agent;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A CRIU for the agent's unit tests: each dump runs fake-criu.sh (each restore
 * fake-criu-restore.sh), which plays CRIU's side of the action-script protocol against the agent's
 * real action script and FIFOs. Tests steer it with files in {@link #control} and read what
 * happened to the tasks from {@link #outcome}.
 */
final class FakeCriu implements Criu {
  final Path control;
  private final Path script;
  private final Path restoreScript;
  final AtomicInteger dumps = new AtomicInteger();

  FakeCriu(Path dir) throws IOException {
    this.control = Files.createDirectories(dir.resolve("control"));
    this.script = dir.resolve("fake-criu.sh");
    this.restoreScript = dir.resolve("fake-criu-restore.sh");
    try (InputStream in = FakeCriu.class.getResourceAsStream("fake-criu.sh");
        InputStream r = FakeCriu.class.getResourceAsStream("fake-criu-restore.sh")) {
      Files.write(script, in.readAllBytes());
      Files.write(restoreScript, r.readAllBytes());
    }
  }

  @Override
  public String version() {
    return "fake";
  }

  @Override
  public Process startDump(DumpSpec spec) throws IOException {
    dumps.incrementAndGet();
    Files.deleteIfExists(control.resolve("outcome"));
    Files.deleteIfExists(control.resolve("at-post-dump"));
    ProcessBuilder pb =
        new ProcessBuilder(
                "bash",
                script.toString(),
                spec.images().toString(),
                spec.actionScript().toString(),
                control.toString())
            .redirectErrorStream(true)
            .redirectOutput(spec.work().resolve("dump.out").toFile());
    pb.environment().putAll(spec.env());
    return pb.start();
  }

  @Override
  public Process startRestore(RestoreSpec spec) throws IOException {
    Files.deleteIfExists(control.resolve("restore-outcome"));
    ProcessBuilder pb =
        new ProcessBuilder(
                "bash",
                restoreScript.toString(),
                spec.pidfile().toString(),
                spec.actionScript().toString(),
                control.toString())
            .redirectErrorStream(true)
            .redirectOutput(spec.work().resolve("restore.out").toFile());
    pb.environment().putAll(spec.env());
    return pb.start();
  }

  /** "resumed" once the fake restore let its tasks run, else "". */
  String restoreOutcome() throws IOException {
    Path f = control.resolve("restore-outcome");
    return Files.exists(f) ? Files.readString(f).strip() : "";
  }

  /** What the fake CRIU did with the tasks, once it has finished ("" while it runs). */
  String outcome() throws IOException {
    Path f = control.resolve("outcome");
    return Files.exists(f) ? Files.readString(f).strip() : "";
  }

  /** Waits (at most 10 s) for the fake CRIU to finish; returns its outcome. */
  String awaitOutcome() throws IOException, InterruptedException {
    for (int i = 0; i < 1000; i++) {
      String o = outcome();
      if (!o.isEmpty()) {
        return o;
      }
      Thread.sleep(10);
    }
    return "(still running)";
  }

  /** Holds the next dumps before their post-dump hook until {@link #release} (true) . */
  void hold(boolean on) throws IOException {
    if (on) {
      Files.writeString(control.resolve("hold"), "");
    } else {
      Files.deleteIfExists(control.resolve("hold"));
    }
  }

  void failDumps() throws IOException {
    Files.writeString(control.resolve("fail"), "");
  }
}
