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

  /**
   * Loads what a check uses (JNA's binding, the file attribute views: about 100 ms) by reading the
   * agent's own process, so that a user's first checkpoint after the agent starts does not pay for
   * it.
   */
  static void warmUp() {
    long self = ProcessHandle.current().pid();
    ProcTree.tasks(self);
    ProcStatus s = ProcStatus.read(ProcTree.dir(self).resolve("status"));
    TaskCredentials t =
        new TaskCredentials(
            self, s.nsPid(), s.nsPid(), 0, s.name(), executable(self), s.dead(), s.creds());
    OwnerCredentials.violations(Owner.newBuilder().setUid(1).setGid(1).build(), "", List.of(t));
    setIdProgram(self);
  }

  /** Refuses (FAILED_PRECONDITION) to checkpoint the vhost if it breaks the rule; root's pass. */
  static void check(VhostRecord rec) {
    check(rec, ProcTree.of(rec.getPid()));
  }

  /** As {@link #check(VhostRecord)}, over the vhost's processes as a walk just found them. */
  static void check(VhostRecord rec, List<Long> procs) {
    Owner owner = rec.getOwner();
    if (JobOwner.isRoot(owner)) {
      return;
    }
    List<TaskCredentials> tasks = read(rec.getPid(), procs);
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
    return read(initHostPid, ProcTree.of(initHostPid));
  }

  /** As {@link #read(long)}, over the processes {@code procs} ({@link ProcTree#of}). */
  private static List<TaskCredentials> read(long initHostPid, List<Long> procs) {
    Map<Long, ProcStatus> status = new HashMap<>();
    for (long pid : procs) {
      ProcStatus s = ProcStatus.read(ProcTree.dir(pid).resolve("status"));
      if (s != null) {
        status.put(pid, s);
      }
    }
    List<TaskCredentials> out = new ArrayList<>();
    for (long pid : procs) {
      ProcStatus s = status.get(pid);
      if (s == null) {
        continue;
      }
      ProcStatus parent = pid == initHostPid ? null : status.get(s.ppid());
      int ppid = parent == null ? 0 : parent.nsPid();
      String exe = executable(pid);
      for (ProcStatus t : threads(pid, s)) {
        out.add(
            new TaskCredentials(
                pid, s.nsPid(), t.nsPid(), ppid, s.name(), exe, s.dead(), t.creds()));
      }
    }
    return out;
  }

  /** The process's threads, by tid (the leader's status if the list cannot be read). */
  private static List<ProcStatus> threads(long pid, ProcStatus leader) {
    List<ProcStatus> out = new ArrayList<>();
    List<String> tids = new ArrayList<>(ProcTree.tasks(pid));
    tids.sort(null);
    for (String tid : tids) {
      ProcStatus s =
          ProcStatus.read(ProcTree.dir(pid).resolve("task").resolve(tid).resolve("status"));
      if (s != null) {
        out.add(s);
      }
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
}
