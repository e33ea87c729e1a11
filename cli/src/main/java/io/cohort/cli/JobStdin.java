package io.cohort.cli;

import com.google.protobuf.ByteString;
import io.cohort.common.CohortException;
import io.cohort.common.JobInput;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * The standard input `cohort run` gives the job, as mpirun would pass its own on: a file, a pipe or
 * a here-document is read to its end (the job keeps it, so a restart reads on from the same offset,
 * on any node); a terminal is not read (the job gets none, as before: it could not come back to the
 * job after a restart anyway).
 */
final class JobStdin {
  /** How long the read may take before the user is told what is being waited for. */
  private static final long HINT_AFTER_MS = 3000;

  private JobStdin() {}

  /**
   * True if fd 0 is a terminal: a character device of the tty, console or pty majors (4, 5,
   * 136-143), which is what isatty(3) accepts on Linux, read without a native call.
   */
  static boolean isTerminal() {
    try {
      Path fd0 = Path.of("/proc/self/fd/0");
      if (!Files.exists(fd0)) {
        return false; // closed
      }
      int mode = (Integer) Files.getAttribute(fd0, "unix:mode");
      if ((mode & 0170000) != 0020000) {
        return false; // not a character device: a file or a pipe
      }
      long rdev = (Long) Files.getAttribute(fd0, "unix:rdev");
      long major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfffL);
      return major == 4 || major == 5 || (major >= 136 && major <= 143);
    } catch (IOException | UnsupportedOperationException | IllegalArgumentException e) {
      return true; // cannot tell: do not block on it
    }
  }

  /**
   * The job's stdin: empty for a terminal or a closed stdin, else all of {@code in} up to {@code
   * limit} bytes.
   */
  static ByteString read(InputStream in, String limitSetting, PrintStream err) {
    if (isTerminal() || !Files.exists(Path.of("/proc/self/fd/0"))) {
      return ByteString.EMPTY;
    }
    long limit = parseLimit(limitSetting);
    Thread hint =
        new Thread(
            () -> {
              try {
                Thread.sleep(HINT_AFTER_MS);
                err.println(
                    "cohort: reading standard input for the job (it is not a terminal, so the "
                        + "job gets it); end it, or run with </dev/null for none");
              } catch (InterruptedException done) {
                // read before the hint was due
              }
            });
    hint.setDaemon(true);
    hint.start();
    ByteArrayOutputStream buf = new ByteArrayOutputStream();
    byte[] chunk = new byte[64 * 1024];
    try {
      int n;
      while ((n = in.read(chunk)) > 0) {
        buf.write(chunk, 0, n);
        if (buf.size() > limit) {
          throw CohortException.invalid(
              "standard input is larger than COHORT_STDIN_MAX (%s): the job would keep all of it; "
                  + "give the program the file's path instead, or raise COHORT_STDIN_MAX (at most "
                  + "%dM)",
              limitSetting, JobInput.MAX_BYTES >> 20);
        }
      }
    } catch (IOException e) {
      throw CohortException.invalid("cannot read standard input: %s", e.getMessage());
    } finally {
      hint.interrupt();
    }
    return ByteString.copyFrom(buf.toByteArray());
  }

  /** "16M", "512K", "1048576": bytes, at most {@link JobInput#MAX_BYTES}. */
  static long parseLimit(String s) {
    String v = s.strip().toUpperCase(Locale.ROOT);
    long unit = 1;
    if (v.endsWith("K") || v.endsWith("M") || v.endsWith("G")) {
      unit = 1L << (10 * ("KMG".indexOf(v.charAt(v.length() - 1)) + 1));
      v = v.substring(0, v.length() - 1);
    }
    long bytes;
    try {
      bytes = Math.multiplyExact(Long.parseLong(v), unit);
    } catch (NumberFormatException | ArithmeticException e) {
      bytes = -1;
    }
    if (bytes < 0 || bytes > JobInput.MAX_BYTES) {
      throw CohortException.invalid(
          "COHORT_STDIN_MAX=%s: give a size up to %dM (bytes, or with K or M)",
          s, JobInput.MAX_BYTES >> 20);
    }
    return bytes;
  }
}
