package io.cohort.cli;

import io.cohort.common.CohortException;
import io.cohort.common.ProcessRunner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import picocli.CommandLine.Command;

@Command(
    name = "doctor",
    mixinStandardHelpOptions = true,
    description = {
      "Check every requirement of Cohort on this machine and say how to fix " + "what is missing.",
      "Exits 0 when everything is in place, 1 otherwise."
    })
final class DoctorCommand implements Callable<Integer> {
  static final Path MPI_JAR = Path.of("/opt/cohort/openmpi-java/mpi.jar");
  static final Path MPI_JNI = Path.of("/usr/lib/x86_64-linux-gnu/openmpi/lib/libmpi_java.so");
  private static final long MIN_FREE = 1L << 30;
  private static final String SETUP = "run `./cohort setup` from the Cohort checkout";

  private record Check(String name, boolean ok, String detail, String fix) {}

  private final List<Check> checks = new ArrayList<>();

  @Override
  public Integer call() {
    Embedded.Settings s = Embedded.Settings.fromEnvironment();
    long uid = new com.sun.security.auth.module.UnixSystem().getUid();
    add("root", uid == 0, "uid " + uid, "run cohort as root (it creates namespaces and runs CRIU)");
    checkCriu(s.criu());
    checkNamespaces();
    for (String prog : List.of("cohort-init", "cohort-rsh", TlsDialer.PROGRAM)) {
      Path p = s.nativeDir().resolve(prog);
      add(prog, Files.isExecutable(p), p.toString(), SETUP + " (builds native/)");
    }
    Run mpi = run(List.of("mpirun", "--version"));
    Matcher v = Pattern.compile("\\(Open MPI\\) ([0-9.]+)").matcher(mpi.out);
    add(
        "open mpi",
        mpi.rc == 0 && v.find(),
        mpi.rc == 0 && v.find(0) ? "Open MPI " + v.group(1) : mpi.out.strip(),
        SETUP + " (installs Debian's openmpi-bin and libopenmpi-dev)");
    add(
        "open mpi java bindings",
        Files.isRegularFile(MPI_JAR) && Files.isRegularFile(MPI_JNI),
        MPI_JAR + ", " + MPI_JNI,
        SETUP + " (builds mpi.jar from Debian's openmpi source)");
    checkDisk(s.home());
    checkOrphanImages(s.home());
    checkCertificates(s.home());
    checkMunge();
    int failed = 0;
    for (Check c : checks) {
      System.out.printf("%-4s %-24s %s%n", c.ok ? "ok" : "FAIL", c.name, c.detail);
      if (!c.ok) {
        System.out.printf("     %-24s fix: %s%n", "", c.fix);
        failed++;
      }
    }
    System.out.println(failed == 0 ? "All checks passed." : failed + " check(s) failed.");
    return failed == 0 ? 0 : 1;
  }

  private void checkCriu(String criu) {
    Run version = run(List.of(criu, "--version"));
    Matcher m = Pattern.compile("Version:\\s*([0-9]+)\\.([0-9]+)").matcher(version.out);
    if (version.rc != 0 || !m.find()) {
      add(
          "criu",
          false,
          criu + ": " + firstLine(version.out),
          SETUP
              + " (installs CRIU 4.2+ "
              + "into /opt/cohort/criu; Debian 12's criu 3.17 does not work on this kernel)");
      return;
    }
    int major = Integer.parseInt(m.group(1));
    int minor = Integer.parseInt(m.group(2));
    boolean recent = major > 4 || (major == 4 && minor >= 2);
    add(
        "criu version",
        recent,
        m.group(1) + "." + m.group(2) + " (" + criu + ")",
        SETUP
            + " (CRIU 4.2 or newer is needed: older ones fail on this kernel's vDSO or on TCP "
            + "sockets)");
    Run check = run(List.of(criu, "check"));
    add(
        "criu check",
        check.rc == 0 && check.out.contains("Looks good"),
        firstLine(check.out),
        "see `" + criu + " check` output; run as root on a kernel with checkpoint/restore support");
  }

  private void checkNamespaces() {
    List<String> missing = new ArrayList<>();
    for (String ns : List.of("pid", "net", "uts", "ipc", "mnt")) {
      if (!Files.exists(Path.of("/proc/self/ns", ns))) {
        missing.add(ns);
      }
    }
    Run unshare =
        run(List.of("unshare", "--fork", "--pid", "--net", "--uts", "--ipc", "--mount", "true"));
    add(
        "kernel namespaces",
        missing.isEmpty() && unshare.rc == 0,
        missing.isEmpty()
            ? (unshare.rc == 0 ? "pid, net, uts, ipc, mnt" : firstLine(unshare.out))
            : "missing: " + String.join(", ", missing),
        "a kernel with pid, net, uts, ipc and mount namespaces, and root");
    // What an agent's first vhost link needs: the rule that keeps vhosts off the node's daemons.
    Run nft = run(List.of("nft", "--version"));
    add(
        "nftables",
        nft.rc == 0,
        firstLine(nft.out),
        SETUP + " (installs Debian's nftables: agents refuse what vhosts send to their node)");
    add(
        "tun device",
        Files.exists(Path.of("/dev/net/tun")),
        "/dev/net/tun",
        "load the tun module (needed by the multinode overlay)");
  }

  private void checkDisk(Path home) {
    Path p = home;
    while (p != null && !Files.exists(p)) {
      p = p.getParent();
    }
    try {
      long free = Files.getFileStore(p).getUsableSpace();
      add(
          "image store space",
          free >= MIN_FREE,
          String.format("%.1f GB free in %s", free / 1e9, home),
          "free space in "
              + home
              + " or set COHORT_HOME to a larger file system; "
              + "`cohort rm` removes old checkpoints");
    } catch (IOException | NullPointerException e) {
      add("image store space", false, "cannot check " + home + ": " + e, "set COHORT_HOME");
    }
  }

  /**
   * Images in this machine's store that no checkpoint record in this machine's catalog lists (the
   * layout of docs/user-guide.md, "Where things are"). Only reported, never a failure and never
   * removed here: the coordinator's sweep removes them at its next start (embedded: the next
   * command that changes jobs), unless a checkpoint of their job is running (an image of a
   * checkpoint in progress shows here until its record is written) or the catalog does not know
   * their job.
   */
  private void checkOrphanImages(Path home) {
    Path images = home.resolve("agent").resolve("images");
    Path records = home.resolve("coordinator").resolve("checkpoints");
    if (!Files.isDirectory(images) || !Files.isDirectory(records)) {
      return; // no store or no catalog on this machine: nothing to compare
    }
    List<String> orphans = new ArrayList<>();
    long bytes = 0;
    try (Stream<Path> ckpts = Files.list(images)) {
      for (Path c : ckpts.filter(Files::isDirectory).sorted().toList()) {
        String ckpt = c.getFileName().toString();
        if (ckpt.startsWith(".") || Files.exists(records.resolve(ckpt + ".json"))) {
          continue; // pending, or listed by a record
        }
        try (Stream<Path> vhosts = Files.list(c)) {
          for (Path v : vhosts.filter(v -> Files.exists(v.resolve("manifest.json"))).toList()) {
            orphans.add(ckpt + "/" + v.getFileName());
            bytes += sizeOf(v);
          }
        }
      }
    } catch (IOException | java.io.UncheckedIOException e) {
      add("orphan images", false, "cannot list " + images + ": " + e, "check " + images);
      return;
    }
    add(
        "orphan images",
        true,
        orphans.isEmpty()
            ? "none (every image in " + images + " is listed by a checkpoint record)"
            : String.format(
                "%d image(s), %.1f MB, listed by no checkpoint record: %s; the coordinator"
                    + " removes them at its next start, or, without a coordinator daemon, the"
                    + " next run, checkpoint, restart, kill or rm (see docs/design.md)",
                orphans.size(),
                bytes / 1e6,
                String.join(", ", orphans.subList(0, Math.min(5, orphans.size())))
                    + (orphans.size() > 5 ? ", ..." : "")),
        "");
  }

  /** The cluster's certificates on this machine: a real cluster's, and the emulated cluster's. */
  private void checkCertificates(Path home) {
    boolean any = false;
    for (Path dir : List.of(home.resolve("tls"), EmulatedCluster.tlsDir(home))) {
      if (Files.isDirectory(dir)) {
        any = true;
        for (CertificateCheck.Finding f : CertificateCheck.check(dir, java.time.Instant.now())) {
          add(f.name(), f.ok(), f.detail(), f.fix());
        }
      }
    }
    if (!any) {
      add(
          "cluster certificates",
          true,
          "none in "
              + home.resolve("tls")
              + " (only daemons need them: `cohort ca init`, `cohort ca issue`; "
              + "`cohort cluster up` makes its own)",
          "");
    }
  }

  /**
   * MUNGE, which users on other machines prove who they are with: its programs, and a credential
   * made and checked through this machine's munged.
   */
  private void checkMunge() {
    Run version = run(List.of("munge", "--version"));
    add(
        "munge",
        version.rc == 0,
        firstLine(version.out),
        SETUP + " (installs Debian's munge, creates the key, starts munged)");
    if (version.rc != 0) {
      return;
    }
    Munge munge = Munge.system();
    long start = System.nanoTime();
    String failure = munge.roundTrip();
    add(
        "munged",
        failure == null,
        failure == null
            ? String.format(
                "answers on %s (munge + unmunge: %d ms)",
                munge.socket(), (System.nanoTime() - start) / 1_000_000)
            : failure,
        "as root, from the Cohort checkout: `setup/munge.sh --start` (or `./cohort setup`); "
            + "every machine of the cluster needs the same /etc/munge/munge.key");
  }

  private static long sizeOf(Path dir) throws IOException {
    try (Stream<Path> files = Files.walk(dir)) {
      return files.filter(Files::isRegularFile).mapToLong(f -> f.toFile().length()).sum();
    }
  }

  private void add(String name, boolean ok, String detail, String fix) {
    checks.add(new Check(name, ok, detail, fix));
  }

  private record Run(int rc, String out) {}

  private static Run run(List<String> cmd) {
    try {
      ProcessRunner.Result r = ProcessRunner.run(Duration.ofSeconds(60), Map.of(), cmd);
      return new Run(r.exitCode(), r.output());
    } catch (CohortException e) {
      return new Run(-1, e.getMessage());
    }
  }

  private static String firstLine(String s) {
    String t = s.strip();
    int nl = t.indexOf('\n');
    return nl < 0 ? t : t.substring(0, nl);
  }
}
