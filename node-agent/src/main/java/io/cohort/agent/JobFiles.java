package io.cohort.agent;

import com.google.protobuf.ByteString;
import io.cohort.common.CohortException;
import io.cohort.common.DurableFiles;
import io.cohort.common.JobInput;
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
 * native/src/output.h), and the standard input. The job's processes hold them open by path, as they
 * hold the output log, so a checkpoint records their sizes and a restart cuts the logs back to
 * them; an image that moves to another node takes the logs along (as the output log). The stdin is
 * part of every image (a hard link where the image store shares the file system, else a copy,
 * covered by the manifest's digests like CRIU's files): a restart on any node, even from a shared
 * image directory while the node that ran the job is gone, puts it back where the job reads it.
 */
final class JobFiles {
  static final String STDERR = "stderr.log";
  static final String ORDER = "output.order";
  static final String STDIN = "stdin";

  /** The stdin's name in an image's CRIU directory. */
  static final String STDIN_IN_IMAGE = "cohort-stdin.img";

  private JobFiles() {}

  /**
   * CRIU restores a file only with the mode it had at the dump: the stdin has this one wherever it
   * is written, whatever the umask.
   */
  private static final java.util.Set<java.nio.file.attribute.PosixFilePermission> STDIN_MODE =
      java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--");

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
   * exists and is not shorter; stdin is the very content it was, or the image has it (verified with
   * the image) to put it back.
   */
  static void check(List<JobFile> files, Path criuDir, String ckpt) {
    for (JobFile f : files) {
      if (!isLog(f) && Files.isRegularFile(criuDir.resolve(STDIN_IN_IMAGE))) {
        continue;
      }
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

  /** Cuts the logs back to their size at the checkpoint (see {@link OutputLog#rollBack}). */
  static List<OutputLog.Rollback> rollBack(OutputLog output, List<JobFile> files, String ckpt) {
    List<OutputLog.Rollback> done = new ArrayList<>();
    try {
      for (JobFile f : files) {
        if (isLog(f)) {
          done.add(output.rollBack(Path.of(f.getPath()), f.getSize(), ckpt));
        }
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
   * Puts a file received with an image where the restored processes expect it, unless it is there
   * already (the same file on shared storage, or a log in a later state, cut back at the restore).
   */
  static void place(Path received, JobFile f) throws IOException {
    if (!isLog(f) && !sha256(received).equals(f.getSha256())) {
      throw CohortException.dataLoss(
          "the job's %s received with its image does not match its digest", f.getName());
    }
    Path target = Path.of(f.getPath());
    if (Files.exists(target)
        && (isLog(f)
            ? Files.size(target) >= f.getSize()
            : Files.size(target) == f.getSize() && sha256(target).equals(f.getSha256()))) {
      return;
    }
    Files.createDirectories(target.getParent());
    Path tmp = target.resolveSibling("." + target.getFileName() + ".import");
    Files.copy(received, tmp, StandardCopyOption.REPLACE_EXISTING);
    if (!isLog(f)) {
      Files.setPosixFilePermissions(tmp, STDIN_MODE);
    }
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
