package io.cohort.cli;

import io.cohort.common.CohortException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.List;

/**
 * What a job's vhost cannot see of its node: every vhost mounts its own /tmp, /dev/shm, /dev/pts,
 * /proc and /sys (native/src/mounts.c, replaced_dirs). A job started from a directory under one of
 * them, or whose program lies there, would fail inside the vhost ("cohort-init: chdir /tmp/...: No
 * such file or directory") after the job was created; `cohort run` refuses it first, saying why and
 * what to do.
 */
final class VisibleInVhost {
  static final List<String> PRIVATE = List.of("/tmp", "/dev/shm", "/dev/pts", "/proc", "/sys");

  private VisibleInVhost() {}

  /**
   * Refuses (INVALID_ARGUMENT) a working directory, a program (the command's first word, looked up
   * on {@code path} as execvp does when it has no '/'), or a program handed to another (an argument
   * naming an executable file, as in {@code mpirun -np 4 /tmp/x/ring}) that the vhost would not
   * see. Paths are taken after symbolic links.
   */
  static void check(Path cwd, List<String> command, String path) {
    String hidden = privateDir(cwd);
    if (hidden != null) {
      throw CohortException.invalid(
          "the working directory %s is under %s, which the job "
              + "cannot see: its virtual host has its own %s. Run it from a directory outside "
              + "those (e.g. under /var/tmp, /srv or your home), with the program there too",
          cwd, hidden, String.join(", ", PRIVATE));
    }
    Path program = program(cwd, command.get(0), path);
    if (program != null) {
      refuseHidden(program, command.get(0));
    }
    for (String arg : command.subList(1, command.size())) {
      Path p = arg.contains("/") ? resolve(cwd, arg) : null;
      if (p != null && Files.isRegularFile(p) && Files.isExecutable(p)) {
        refuseHidden(p, arg);
      }
    }
  }

  private static void refuseHidden(Path program, String given) {
    String hidden = privateDir(program);
    if (hidden != null) {
      throw CohortException.invalid(
          "the program %s%s is under %s, which the job cannot "
              + "see: its virtual host has its own %s. Put it in a directory outside those "
              + "(e.g. under /var/tmp, /srv or your home) and run it from there",
          given,
          given.equals(program.toString()) ? "" : " (" + program + ")",
          hidden,
          String.join(", ", PRIVATE));
    }
  }

  /** The directory of {@link #PRIVATE} that holds {@code p} (after links), or null. */
  static String privateDir(Path p) {
    String s = real(p).toString();
    for (String dir : PRIVATE) {
      if (s.equals(dir) || s.startsWith(dir + "/")) {
        return dir;
      }
    }
    return null;
  }

  /** The file execvp would run for {@code word}, or null when there is none. */
  private static Path program(Path cwd, String word, String path) {
    if (word.contains("/")) {
      return resolve(cwd, word);
    }
    for (String dir : (path == null ? "" : path).split(":", -1)) {
      Path p = resolve(cwd, dir.isEmpty() ? word : dir + "/" + word);
      if (p != null && Files.isRegularFile(p) && Files.isExecutable(p)) {
        return p;
      }
    }
    return null;
  }

  private static Path resolve(Path cwd, String name) {
    try {
      return cwd.resolve(name).normalize();
    } catch (InvalidPathException e) {
      return null; // not a file name (a NUL byte...): not ours to judge
    }
  }

  private static Path real(Path p) {
    try {
      return p.toRealPath();
    } catch (IOException e) {
      return p.toAbsolutePath().normalize(); // does not exist (yet): as written
    }
  }
}
