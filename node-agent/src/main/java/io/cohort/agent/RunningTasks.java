package io.cohort.agent;

import com.sun.jna.LastErrorException;
import io.cohort.common.CohortException;
import io.cohort.proto.v1.Owner;
import io.cohort.proto.v1.VhostRecord;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A running vhost's threads as {@code /proc} shows them, and the check the checkpoint's prepare
 * makes on a non-root owner's vhost before anything is frozen: no process runs a set-uid, set-gid
 * or file-capability program, and every thread has the owner's credentials ({@link
 * OwnerCredentials}). CRIU would dump such a process with its privileges and a restart would give
 * them back from the image, without the program's say (it may have dropped them on purpose, and a
 * raw socket it opened with them is restored all the same). The restore checks the image again
 * ({@link ImageCredentials}): a set-id program started between this check and the freeze is caught
 * at the seal.
 */
final class RunningTasks {
  private static final int S_ISUID = 04000;
  private static final int S_ISGID = 02000;
  private static final int S_IXGRP = 00010;
  private static final int ENODATA = 61;
  private static final int ENOTSUP = 95;

  private RunningTasks() {}

  /** Refuses (FAILED_PRECONDITION) to checkpoint the vhost if it breaks the rule; root's pass. */
  static void check(VhostRecord rec) {
    Owner owner = rec.getOwner();
    if (JobOwner.isRoot(owner)) {
      return;
    }
    List<TaskCredentials> tasks = read(rec.getPid());
    List<String> setId = new ArrayList<>();
    for (TaskCredentials t : tasks) {
      String program = t.tid() == t.pid() && !t.dead() ? setIdProgram(t.hostPid()) : null;
      if (program != null) {
        setId.add(t.describe() + " runs " + program);
      }
    }
    List<String> creds = OwnerCredentials.violations(owner, rec.getInitPath(), tasks);
    if (setId.isEmpty() && creds.isEmpty()) {
      return;
    }
    List<String> all = new ArrayList<>(setId);
    all.addAll(creds);
    throw CohortException.precondition(
        "job %s: %s%s. Cohort does not checkpoint set-id programs, nor processes that hold "
            + "other credentials than their owner's (a restart would give them their privileges "
            + "back): checkpoint the job once they have ended. It was not frozen and runs on",
        rec.getJobId(),
        OwnerCredentials.named(all),
        creds.isEmpty() ? "" : OwnerCredentials.ownerLine(owner));
  }

  /**
   * Every thread of the vhost whose pid 1 is {@code initHostPid}, pid 1's first; a process that
   * ends meanwhile is left out.
   */
  static List<TaskCredentials> read(long initHostPid) {
    List<ProcessHandle> procs =
        ProcessHandle.of(initHostPid)
            .map(h -> Stream.concat(Stream.of(h), h.descendants()).toList())
            .orElse(List.of());
    Map<Long, Status> status = new HashMap<>();
    for (ProcessHandle p : procs) {
      Status s = Status.read(Path.of("/proc", Long.toString(p.pid()), "status"));
      if (s != null) {
        status.put(p.pid(), s);
      }
    }
    List<TaskCredentials> out = new ArrayList<>();
    for (ProcessHandle p : procs) {
      Status s = status.get(p.pid());
      if (s == null) {
        continue;
      }
      Status parent = p.pid() == initHostPid ? null : status.get(s.ppid);
      int ppid = parent == null ? 0 : parent.nsPid;
      String exe = executable(p.pid());
      for (Status t : threads(p.pid(), s)) {
        out.add(new TaskCredentials(p.pid(), s.nsPid, t.nsPid, ppid, s.name, exe, s.dead, t.creds));
      }
    }
    return out;
  }

  /** The process's threads (the leader's status if the list cannot be read). */
  private static List<Status> threads(long pid, Status leader) {
    List<Status> out = new ArrayList<>();
    try (Stream<Path> tasks = Files.list(Path.of("/proc", Long.toString(pid), "task"))) {
      for (Path t : tasks.sorted().toList()) {
        Status s = Status.read(t.resolve("status"));
        if (s != null) {
          out.add(s);
        }
      }
    } catch (IOException gone) {
      // the process ended meanwhile
    }
    return out.isEmpty() ? List.of(leader) : out;
  }

  private static String executable(long pid) {
    try {
      return Files.readSymbolicLink(Path.of("/proc", Long.toString(pid), "exe")).toString();
    } catch (IOException | UnsupportedOperationException e) {
      return ""; // a zombie, or gone
    }
  }

  /** What makes the process's program set-id ("a set-uid program"...), or null. */
  static String setIdProgram(long pid) {
    Path exe = Path.of("/proc", Long.toString(pid), "exe");
    int mode;
    try {
      mode = (Integer) Files.getAttribute(exe, "unix:mode"); // of the program: follows the link
    } catch (IOException gone) {
      return null;
    }
    if ((mode & S_ISUID) != 0) {
      return "a set-uid program";
    }
    // Without group execute, the bit means mandatory locking, not set-gid (execve(2)).
    if ((mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) {
      return "a set-gid program";
    }
    try {
      if (LibC.INSTANCE.getxattr(exe.toString(), "security.capability", null, 0) > 0) {
        return "a program with file capabilities";
      }
    } catch (LastErrorException e) {
      if (e.getErrorCode() != ENODATA && e.getErrorCode() != ENOTSUP) {
        return "a program whose file capabilities cannot be read (errno " + e.getErrorCode() + ")";
      }
    }
    return null;
  }

  /** What the agent reads of {@code /proc/PID[/task/TID]/status}. */
  private record Status(
      String name, long ppid, int nsPid, boolean dead, TaskCredentials.Creds creds) {

    /** null if the task ended meanwhile. */
    static Status read(Path file) {
      Map<String, String> f = new HashMap<>();
      try {
        for (String line : Files.readAllLines(file)) {
          int colon = line.indexOf(':');
          if (colon > 0) {
            f.put(line.substring(0, colon), line.substring(colon + 1).trim());
          }
        }
      } catch (IOException gone) {
        return null;
      }
      String[] ns = f.getOrDefault("NSpid", "0").split("\\s+");
      int[] u = ids(f.get("Uid"));
      int[] g = ids(f.get("Gid"));
      List<Integer> groups =
          f.getOrDefault("Groups", "").isEmpty()
              ? List.of()
              : Stream.of(f.get("Groups").split("\\s+")).map(Integer::parseUnsignedInt).toList();
      return new Status(
          f.getOrDefault("Name", ""),
          Long.parseLong(f.getOrDefault("PPid", "0")),
          Integer.parseInt(ns[ns.length - 1]),
          f.getOrDefault("State", "").startsWith("Z"),
          new TaskCredentials.Creds(
              u[0],
              u[1],
              u[2],
              u[3],
              g[0],
              g[1],
              g[2],
              g[3],
              groups,
              cap(f, "CapInh"),
              cap(f, "CapPrm"),
              cap(f, "CapEff"),
              cap(f, "CapAmb")));
    }

    private static int[] ids(String line) {
      return Stream.of(line.split("\\s+")).mapToInt(Integer::parseUnsignedInt).toArray();
    }

    private static long cap(Map<String, String> f, String name) {
      return Long.parseUnsignedLong(f.getOrDefault(name, "0"), 16);
    }
  }
}
