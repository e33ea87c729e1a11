package io.cohort.cli;

import io.cohort.common.Caller;
import io.netty.channel.unix.PeerCredentials;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * A {@link Caller} from a Unix socket peer's credentials: uid and gid from the kernel (SO_PEERCRED:
 * the effective ids of the process when it connected), supplementary groups from {@code
 * /proc/PID/status} of that process, read at once, and only if that process still has the same uid
 * and gid (else none: fewer groups never grant more), the name from the user database.
 */
final class PeerIdentity {
  private final Path proc;
  private final Map<Integer, String> names = new ConcurrentHashMap<>();

  PeerIdentity(Path proc) {
    this.proc = proc;
  }

  static PeerIdentity system() {
    return new PeerIdentity(Path.of("/proc"));
  }

  /** The caller; IOException when the kernel gave no group (Netty's first gid is ucred's). */
  Caller of(PeerCredentials cred) throws IOException {
    int[] gids = cred.gids();
    if (gids.length == 0) {
      throw new IOException("the kernel gave no group for the peer " + cred);
    }
    return new Caller(
        cred.uid(), gids[0], groups(cred.pid(), cred.uid(), gids[0]), name(cred.uid()));
  }

  /** This process's effective uid (-1 if /proc does not say). */
  static int effectiveUid() {
    try {
      String[] uids = field(Files.readAllLines(Path.of("/proc/self/status")), "Uid:");
      return uids.length < 2 ? -1 : Integer.parseInt(uids[1]);
    } catch (IOException | NumberFormatException e) {
      return -1;
    }
  }

  /** The process's supplementary groups if it still runs with {@code uid} and {@code gid}. */
  List<Integer> groups(int pid, int uid, int gid) {
    List<String> lines;
    try {
      lines = Files.readAllLines(proc.resolve(Integer.toString(pid)).resolve("status"));
    } catch (IOException | RuntimeException gone) {
      return List.of();
    }
    String[] uids = field(lines, "Uid:");
    String[] gids = field(lines, "Gid:");
    String[] groups = field(lines, "Groups:");
    // Effective ids are the second column.
    if (uids.length < 2
        || gids.length < 2
        || !uids[1].equals(Integer.toString(uid))
        || !gids[1].equals(Integer.toString(gid))) {
      return List.of();
    }
    List<Integer> out = new ArrayList<>();
    for (String g : groups) {
      try {
        out.add(Integer.parseInt(g));
      } catch (NumberFormatException ignored) {
        // not a group number: skip it
      }
    }
    return out;
  }

  private static String[] field(List<String> lines, String key) {
    for (String l : lines) {
      if (l.startsWith(key)) {
        String rest = l.substring(key.length()).strip();
        return rest.isEmpty() ? new String[0] : rest.split("\\s+");
      }
    }
    return new String[0];
  }

  /**
   * The login name of {@code uid}, "" when the user database has none; remembered, as a name does
   * not change under a running daemon (a renamed user shows the old name until it restarts).
   */
  String name(int uid) {
    return names.computeIfAbsent(uid, PeerIdentity::lookUp);
  }

  /** `getent passwd UID`: the user database as the system configures it (files, LDAP, ...). */
  private static String lookUp(int uid) {
    if (uid == 0) {
      return "root";
    }
    try {
      Process p =
          new ProcessBuilder("getent", "passwd", Integer.toString(uid))
              .redirectErrorStream(true)
              .start();
      String line = new String(p.getInputStream().readAllBytes()).strip();
      if (!p.waitFor(5, TimeUnit.SECONDS) || p.exitValue() != 0 || line.indexOf(':') <= 0) {
        return "";
      }
      return line.substring(0, line.indexOf(':'));
    } catch (IOException e) {
      return "";
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      return "";
    }
  }
}
