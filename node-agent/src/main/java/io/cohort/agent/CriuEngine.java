package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.common.ProcessRunner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Runs CRIU with the options verified for vhosts (docs/design.md, "CRIU options"). One instance per
 * agent; stateless apart from its configuration.
 */
final class CriuEngine implements Criu {
  /** Options shared by dump and restore: TCP, network lock, mounts (tests dump with them too). */
  static final List<String> COMMON =
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

  /** native/build/libcohort-prlimit.so, preloaded into dumps; null when it is not built. */
  private final Path prlimitPreload;

  /**
   * CRIU run as {@code criu}; dumps preload {@code prlimitPreload} (if it exists), which lets CRIU
   * read the resource limits of a job that runs as its owner where root lacks CAP_SYS_RESOURCE (see
   * native/src/criu-prlimit.c).
   */
  CriuEngine(List<String> criu, Path prlimitPreload) {
    this.criu = List.copyOf(criu);
    this.prlimitPreload =
        prlimitPreload != null && Files.isRegularFile(prlimitPreload) ? prlimitPreload : null;
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
            spec.images().toAbsolutePath().toString(),
            "-W",
            spec.work().toAbsolutePath().toString(),
            "-o",
            "dump.log",
            "--action-script",
            spec.actionScript().toAbsolutePath().toString()));
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
    if (prlimitPreload != null) {
      preload(pb, prlimitPreload);
    }
    return pb.start();
  }

  /**
   * Preloads {@code library} into the program {@code pb} starts, as {@code ./NAME} from the
   * library's directory, made its working directory. LD_PRELOAD splits its list at spaces and
   * colons, with no escape, and a checkout's path may hold spaces ("/srv/my builds/cohort"); nor
   * can the library go by name through LD_LIBRARY_PATH, since setup's CRIU runs through its own
   * loader with {@code --library-path}. CRIU's working directory is otherwise unused: the paths it
   * is given are absolute.
   */
  static void preload(ProcessBuilder pb, Path library) {
    pb.directory(library.toAbsolutePath().getParent().toFile());
    pb.environment().put("LD_PRELOAD", "./" + library.getFileName());
  }

  @Override
  public Process startRestore(RestoreSpec spec) throws IOException {
    List<String> cmd = new ArrayList<>(SETSID);
    cmd.addAll(criu);
    cmd.addAll(
        List.of(
            "restore",
            "-D",
            spec.images().toString(),
            "-W",
            spec.work().toString(),
            "-o",
            "restore.log",
            "-d",
            "--root",
            "/",
            "--pidfile",
            spec.pidfile().toString(),
            "--action-script",
            spec.actionScript().toString()));
    cmd.addAll(COMMON);
    cmd.addAll(spec.extra());
    ProcessBuilder pb =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(spec.work().resolve("restore.out").toFile());
    pb.environment().putAll(spec.env());
    return pb.start();
  }
}
