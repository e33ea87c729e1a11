package io.cohort.agent;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.function.BiFunction;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Why a CRIU dump or restore failed, in one line for the user, read from CRIU's log.
 *
 * <p>CRIU logs an error as {@code (SS.uuuuuu) PID: Error (criu/FILE.c:LINE): PREFIX: text}; tools
 * it runs write their own {@code Error...} lines into the same log. The first error that matches a
 * known cause is told in plain words with what to do; otherwise the first error that is neither
 * known noise nor a consequence of an earlier error ("Restoring FAILED.") is quoted. The first
 * error is the cause: CRIU stops at it, and the errors after it only report the failure upwards.
 */
final class CriuLogCause {
  /** What kind of cause was found; callers pick their status or advice by it. */
  enum Kind {
    FILE_CHANGED,
    FILE_MISSING,
    ADDRESS_IN_USE,
    PID_IN_USE,
    MOUNT,
    NO_SPACE,
    PERMISSION,
    OTHER,
    NONE
  }

  /** One line saying why, and its kind. */
  record Cause(Kind kind, String line) {}

  private static final Pattern ERROR =
      Pattern.compile("^(?:\\(\\d+\\.\\d+\\)\\s*)?(?:\\d+:\\s*)?Error(?: \\([^)]*\\))?:\\s*(.*)$");

  /**
   * Errors in every vhost's dump and restore that change nothing (setup/README.md, "CRIU log
   * noise"): the absent iptables tools (the nftables lock needs none), CRIU failing to raise its
   * own file limit, `ip` re-adding an address the namespace already has.
   */
  private static final Pattern NOISE =
      Pattern.compile(
          "ip6?tables(?:-legacy)?-(?:save|restore)|RLIMIT_NOFILE|address already assigned",
          Pattern.CASE_INSENSITIVE);

  /** Errors that only pass an earlier error upwards. */
  private static final Pattern CONSEQUENCE =
      Pattern.compile(
          "(?:Restoring|Dumping|Pre-dumping) FAILED|^\\d+ exited, status=|^exited, status="
              + "|^\\d+ killed by signal|^Unable to open fd=");

  /** A known cause: its pattern, and its words made from the match and CRIU's error text. */
  private record Known(Kind kind, Pattern pattern, BiFunction<Matcher, String, String> words) {}

  /** Known causes in the order they are tried on each error line. */
  private static final List<Known> KNOWN =
      List.of(
          new Known(
              Kind.FILE_CHANGED,
              Pattern.compile("File (\\S+) has bad size (\\d+) \\(expect (\\d+)\\)"),
              (m, e) ->
                  "the job's file "
                      + absolute(m.group(1))
                      + " changed since the checkpoint ("
                      + m.group(2)
                      + " bytes now, "
                      + m.group(3)
                      + " at the checkpoint); put it back as it was then, or restore a later"
                      + " checkpoint"),
          new Known(
              Kind.FILE_MISSING,
              Pattern.compile("Can't open file (\\S+?)(?: on restore)?: No such file or directory"),
              (m, e) ->
                  "the job's file "
                      + absolute(m.group(1))
                      + ", open at the checkpoint, is missing; put it back, or restore a later"
                      + " checkpoint"),
          new Known(
              Kind.ADDRESS_IN_USE,
              Pattern.compile("Address already in use"),
              (m, e) ->
                  "an address the job had bound is in use by another process on this node ("
                      + quoted(e)
                      + "); stop that process, or restore on another node"),
          new Known(
              Kind.PID_IN_USE,
              Pattern.compile(
                  "Can't fork for (\\d+): File exists|Pid \\d+ do not match expected (\\d+)"),
              (m, e) ->
                  "process id "
                      + (m.group(1) != null ? m.group(1) : m.group(2))
                      + ", which the job had at the checkpoint, is taken by another process on this"
                      + " node; wait until that process ends and try again"),
          new Known(
              Kind.MOUNT,
              Pattern.compile("\\bmount(?:point)?\\b|bind-mount", Pattern.CASE_INSENSITIVE),
              (m, e) ->
                  "a mount the job had is missing or cannot be made on this node ("
                      + quoted(e)
                      + "); make sure it exists here as it did at the checkpoint"),
          new Known(
              Kind.NO_SPACE,
              Pattern.compile("No space left on device"),
              (m, e) -> "a disk is full (" + quoted(e) + "); free some space and try again"),
          new Known(
              Kind.PERMISSION,
              Pattern.compile("Permission denied|Operation not permitted"),
              (m, e) ->
                  "CRIU was refused permission ("
                      + quoted(e)
                      + "); the agent must run as root, and a read-only file system or a security"
                      + " module may be in the way"));

  /** Longest CRIU text quoted in a cause: one line stays one line on a terminal. */
  private static final int QUOTE_MAX = 240;

  private CriuLogCause() {}

  /** The cause told by the log at {@code log}; a line saying so if it cannot be read. */
  static Cause of(Path log) {
    try {
      return of(Files.readAllLines(log, StandardCharsets.UTF_8));
    } catch (IOException e) {
      return new Cause(Kind.NONE, "CRIU left no readable log");
    }
  }

  /** The cause told by the lines of a CRIU log. */
  static Cause of(List<String> lines) {
    List<String> errors =
        lines.stream()
            .map(ERROR::matcher)
            .filter(Matcher::matches)
            .map(m -> m.group(1).strip())
            .filter(e -> !NOISE.matcher(e).find())
            .toList();
    for (String error : errors) {
      for (Known k : KNOWN) {
        Matcher m = k.pattern().matcher(error);
        if (m.find()) {
          return new Cause(k.kind(), k.words().apply(m, error));
        }
      }
    }
    String first =
        errors.stream()
            .filter(e -> !CONSEQUENCE.matcher(e).find())
            .findFirst()
            .orElse(errors.isEmpty() ? null : errors.get(errors.size() - 1));
    return first == null
        ? new Cause(Kind.NONE, "CRIU's log names no error")
        : new Cause(Kind.OTHER, "CRIU said \"" + clip(first) + "\"");
  }

  /**
   * CRIU names a file relative to the root of its mount namespace; a vhost's is the node's own root
   * (it is restored with --root /).
   */
  private static String absolute(String path) {
    return path.startsWith("/") ? path : "/" + path;
  }

  private static String quoted(String error) {
    return "CRIU: \"" + clip(error) + "\"";
  }

  private static String clip(String s) {
    return s.length() <= QUOTE_MAX ? s : s.substring(0, QUOTE_MAX) + "...";
  }
}
