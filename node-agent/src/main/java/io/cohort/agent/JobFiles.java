package io.cohort.agent;

import com.google.protobuf.ByteString;
import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.JobInput;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.JobFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * The files the agent keeps for a job's head vhost beside its output log (which is its stdout): the
 * stderr log, the order of the chunks of both (written by the vhost's init, see
 * native/src/output.h), and the standard input. A checkpoint records the logs' sizes and a restart
 * cuts them back to them. The stdin is part of every image (a hard link where the image store
 * shares the file system, else a copy, covered by the manifest's digests like CRIU's files): a
 * restart on any node, even from a shared image directory while the node that ran the job is gone,
 * puts it back where the job reads it.
 *
 * <p>An image copied to another node takes the logs along, as they were at the checkpoint, and
 * keeps them inside the copy ({@value #LOGS_IN_IMAGE}/); only a restore from that copy puts them at
 * their paths. A copy must never write there itself: the paths are the job's, and the job may be
 * running there (a later incarnation restored on that node, or, on nodes that share a file system,
 * the very vhost the copy was taken from), so a copy landing after that incarnation's restore would
 * put the older output back under it and the job would write on after it (its output twice). The
 * restore runs only once the vhost's earlier incarnation is gone.
 */
final class JobFiles {
  /** The output log (the job's stdout) among the logs of {@link #logs}. */
  static final String STDOUT = "output.log";

  static final String STDERR = "stderr.log";
  static final String ORDER = "output.order";
  static final String STDIN = "stdin";

  /** The directory of an image copied from another node that holds the job's logs. */
  static final String LOGS_IN_IMAGE = "job";

  /** The stdin's name in an image's CRIU directory. */
  static final String STDIN_IN_IMAGE = "cohort-stdin.img";

  private JobFiles() {}

  /**
   * CRIU restores a file only with the mode it had at the dump: the stdin has this one wherever it
   * is written, whatever the umask (the owner's, see {@link JobOwner}).
   */
  private static final java.util.Set<java.nio.file.attribute.PosixFilePermission> STDIN_MODE =
      JobOwner.FILE_MODE;

  /**
   * Creates the job's files in a new vhost's directory: the empty stderr and order logs, and its
   * standard input if it has one (it never changes, so a restart can check it whole).
   */
  static List<JobFile> create(Path dir, ByteString stdin) throws IOException {
    JobInput.check(stdin.size());
    List<JobFile> files = new ArrayList<>();
    for (String log : List.of(STDERR, ORDER)) {
      Path p = dir.resolve(log);
      Files.write(p, new byte[0]);
      files.add(JobFile.newBuilder().setName(log).setPath(p.toString()).build());
    }
    if (!stdin.isEmpty()) {
      Path p = dir.resolve(STDIN);
      Files.deleteIfExists(p);
      Files.write(p, stdin.toByteArray());
      Files.setPosixFilePermissions(p, STDIN_MODE);
      DurableFiles.fsync(p);
      files.add(
          JobFile.newBuilder()
              .setName(STDIN)
              .setPath(p.toString())
              .setSize(stdin.size())
              .setSha256(FileTracker.sha256(p, 0, stdin.size()))
              .build());
    }
    return files;
  }

  /** The output log and the job's files, as paths. */
  static List<Path> paths(Path outputLog, List<JobFile> files) {
    List<Path> out = new ArrayList<>(List.of(outputLog));
    files.forEach(f -> out.add(Path.of(f.getPath())));
    return out;
  }

  /** The options that hand them to cohort-init. */
  static List<String> initOptions(List<JobFile> files) {
    List<String> opts = new ArrayList<>();
    find(files, STDERR).ifPresent(f -> opts.addAll(List.of("--err-log", f.getPath())));
    find(files, ORDER).ifPresent(f -> opts.addAll(List.of("--order", f.getPath())));
    find(files, STDIN).ifPresent(f -> opts.addAll(List.of("--stdin", f.getPath())));
    return opts;
  }

  static Optional<JobFile> find(List<JobFile> files, String name) {
    return files.stream().filter(f -> f.getName().equals(name)).findFirst();
  }

  /**
   * The job's logs in an image, each with its path and its size at the checkpoint: the output log
   * ({@value #STDOUT}) first, then the stderr and order logs (absent for a vhost started before
   * they were kept apart).
   */
  static List<JobFile> logs(ImageManifest m) {
    List<JobFile> out = new ArrayList<>();
    out.add(
        JobFile.newBuilder()
            .setName(STDOUT)
            .setPath(m.getOutputLogPath())
            .setSize(m.getOutputLogSize())
            .build());
    m.getJobFilesList().stream().filter(JobFiles::isLog).forEach(out::add);
    return out;
  }

  /** Where an image copied from another node keeps a log of the job (see the class comment). */
  static Path inImage(Path imageDir, JobFile log) {
    return imageDir.resolve(LOGS_IN_IMAGE).resolve(log.getName());
  }

  /** The log as the image holds it, if the image was copied from another node. */
  static Optional<Path> carried(Path imageDir, JobFile log) {
    Path p = inImage(imageDir, log);
    return Files.isRegularFile(p) ? Optional.of(p) : Optional.empty();
  }

  private static boolean isLog(JobFile f) {
    return f.getSha256().isEmpty();
  }

  /**
   * Each file with its size now. Called while CRIU's hook holds the tasks frozen (as the hook reads
   * the output log's size), so the logs' sizes are those of the cut; stdin never changes.
   */
  static List<JobFile> atDump(List<JobFile> files) {
    List<JobFile> out = new ArrayList<>();
    for (JobFile f : files) {
      if (!isLog(f)) {
        out.add(f);
        continue;
      }
      try {
        out.add(f.toBuilder().setSize(Files.size(Path.of(f.getPath()))).build());
      } catch (IOException e) {
        throw CohortException.precondition(
            "the job's %s %s cannot be read (%s): it is part of the checkpoint",
            f.getName(), f.getPath(), e.getMessage());
      }
    }
    return out;
  }

  /** Puts the stdin into an image being sealed (the seal digests it with CRIU's files). */
  static void intoImage(List<JobFile> files, Path criuDir) throws IOException {
    Optional<JobFile> stdin = find(files, STDIN);
    if (stdin.isEmpty()) {
      return;
    }
    Path from = Path.of(stdin.get().getPath());
    Path to = criuDir.resolve(STDIN_IN_IMAGE);
    Files.deleteIfExists(to);
    try {
      Files.createLink(to, from); // it never changes: one inode serves the job and its images
    } catch (IOException | UnsupportedOperationException e) {
      Files.copy(from, to); // another file system (a shared image directory)
    }
  }

  /**
   * Checks, changing nothing, that each file can be returned to its state at the checkpoint: a log
   * is in the image (copied from another node) with its size then, or exists at its path and is not
   * shorter; stdin is the very content it was, or the image has it (verified with the image) to put
   * it back.
   */
  static void check(ImageStore.Image image, String ckpt) {
    ImageManifest m = image.manifest();
    for (JobFile f : logs(m)) {
      Optional<Path> copy = carried(image.dir(), f);
      if (copy.isPresent() && copy.get().toFile().length() != f.getSize()) {
        throw CohortException.dataLoss(
            "checkpoint %s is damaged: its copy of the job's %s has %d bytes, %d at the checkpoint; "
                + "restart from another checkpoint",
            ckpt, f.getName(), copy.get().toFile().length(), f.getSize());
      }
      if (copy.isEmpty()) {
        checkAtPath(f, ckpt);
      }
    }
    Optional<JobFile> stdin = find(m.getJobFilesList(), STDIN);
    if (stdin.isPresent() && !Files.isRegularFile(image.criuDir().resolve(STDIN_IN_IMAGE))) {
      checkAtPath(stdin.get(), ckpt);
    }
  }

  /** A log that is not shorter than at the checkpoint, or the stdin as it was, at its path. */
  private static void checkAtPath(JobFile f, String ckpt) {
    Path p = Path.of(f.getPath());
    if (!Files.isRegularFile(p)) {
      throw CohortException.precondition(
          "the job's %s %s is missing; it must exist to restore checkpoint %s",
          f.getName(), p, ckpt);
    }
    long have = p.toFile().length();
    if (isLog(f) ? have < f.getSize() : have != f.getSize() || !sha256(p).equals(f.getSha256())) {
      throw CohortException.precondition(
          "the job's %s %s is not as it was at checkpoint %s (%d bytes then, %d now%s): it was "
              + "changed or replaced, so the job's open file cannot be restored",
          f.getName(), p, ckpt, f.getSize(), have, isLog(f) ? "" : ", or other content");
    }
  }

  /** Puts the stdin back where the job reads it from the image's copy, unless it is there. */
  static void restoreStdin(List<JobFile> files, Path criuDir) {
    Optional<JobFile> stdin = find(files, STDIN);
    Path copy = criuDir.resolve(STDIN_IN_IMAGE);
    if (stdin.isEmpty() || !Files.isRegularFile(copy)) {
      return;
    }
    try {
      place(copy, stdin.get());
    } catch (IOException e) {
      throw DurableFiles.failure("cannot put back the job's stdin " + stdin.get().getPath(), e);
    }
  }

  /**
   * Returns the job's logs to their state at the checkpoint, for its restore (the vhost's earlier
   * incarnation is gone: nothing else writes them). An image copied from another node holds them as
   * they were then, and they replace what is at their paths ({@link OutputLog#replace}); else the
   * logs at their paths, which this node wrote (or sees in a shared directory), are cut back
   * ({@link OutputLog#rollBack}). In the order of {@link #logs}: the output log first.
   */
  static List<OutputLog.Rollback> rollBack(OutputLog output, ImageStore.Image image, String ckpt) {
    List<OutputLog.Rollback> done = new ArrayList<>();
    try {
      for (JobFile f : logs(image.manifest())) {
        Path at = Path.of(f.getPath());
        Optional<Path> copy = carried(image.dir(), f);
        done.add(
            copy.isPresent()
                ? output.replace(at, copy.get(), f.getSize(), ckpt)
                : output.rollBack(at, f.getSize(), ckpt));
      }
    } catch (RuntimeException e) {
      undo(done);
      throw e;
    }
    return done;
  }

  static void undo(List<OutputLog.Rollback> done) {
    done.forEach(OutputLog.Rollback::undo);
  }

  /**
   * Checks the logs received with an image copied from another node (in {@link #LOGS_IN_IMAGE}/ of
   * {@code imageDir}): each must have its size at the checkpoint. The sender reads them at their
   * paths, and a log there shorter than at the checkpoint was cut back by a restart from an older
   * one: this image's output is not there any more.
   */
  static void checkReceived(Path imageDir, ImageManifest m, String source) {
    for (JobFile f : logs(m)) {
      Path p = inImage(imageDir, f);
      long have = p.toFile().length();
      if (!Files.isRegularFile(p) || have != f.getSize()) {
        throw CohortException.precondition(
            "the job's %s of checkpoint %s came from %s with %d bytes, not its %d at the "
                + "checkpoint: the log there was cut back by a restart from an older checkpoint, "
                + "so this image cannot be copied with its output",
            f.getName(), m.getCheckpointId(), source, have, f.getSize());
      }
    }
  }

  /** Puts the stdin from an image where the restored processes read it, unless it is there. */
  private static void place(Path copy, JobFile f) throws IOException {
    if (!sha256(copy).equals(f.getSha256())) {
      throw CohortException.dataLoss(
          "the job's %s in its image does not match its digest", f.getName());
    }
    Path target = Path.of(f.getPath());
    if (Files.exists(target)
        && Files.size(target) == f.getSize()
        && sha256(target).equals(f.getSha256())) {
      return;
    }
    Files.createDirectories(target.getParent());
    Path tmp = target.resolveSibling("." + target.getFileName() + ".import");
    Files.copy(copy, tmp, StandardCopyOption.REPLACE_EXISTING);
    Files.setPosixFilePermissions(tmp, STDIN_MODE);
    DurableFiles.fsync(tmp);
    DurableFiles.rename(tmp, target);
  }

  private static String sha256(Path p) {
    try {
      return FileTracker.sha256(p, 0, Files.size(p));
    } catch (IOException e) {
      throw DurableFiles.failure("cannot read " + p, e);
    }
  }
}
