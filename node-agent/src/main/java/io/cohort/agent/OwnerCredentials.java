package io.cohort.agent;

import io.cohort.proto.v1.Owner;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The rule a non-root owner's vhost keeps, at a checkpoint's prepare ({@link RunningTasks}), at its
 * seal and before a restore ({@link ImageCredentials}): every thread runs with exactly the owner's
 * credentials — its uid as real, effective, saved and file-system uid, its gid likewise, its
 * supplementary groups, no capability (permitted, effective, inheritable, ambient) — except the
 * vhost's init.
 *
 * <p>The init is Cohort's own code, started as root by the agent: cohort-init stays root as pid 1
 * (it writes the status file and the logs in root's directories, see docs/design.md, "Whom the job
 * runs as"), and each child it forks for the job's main process or a spawned command is root until
 * it drops to the owner, in the microseconds before it runs anything of the job. So a task may run
 * as root (uids all 0, any gids, groups and capabilities) only if its executable is the vhost's
 * init binary (the path the agent launched, recorded in the manifest) and it is pid 1 or a child of
 * pid 1. A job cannot make such a task itself: the init binary is not set-id, so a process of the
 * owner that runs it stays the owner's.
 *
 * <p>What this does not cover: pid 1's memory is in the image too, and it decides what pid 1 does
 * as root. Only the authentication of the image (its manifest's HMAC) keeps an edited pid 1 out;
 * this rule keeps out an image whose job processes hold privileges, whether the image was edited or
 * a job process got them through a set-id program after the checkpoint's first check.
 *
 * <p>Root's own jobs are not checked: they may run as anyone.
 */
final class OwnerCredentials {
  /** At most this many tasks named in one message; the rest counted. */
  private static final int NAMED = 3;

  private OwnerCredentials() {}

  /**
   * What is wrong, one line per offending task (its first offending thread), or nothing.
   *
   * @param initExe the vhost's init binary, as the tasks see its path
   */
  static List<String> violations(Owner owner, String initExe, List<TaskCredentials> tasks) {
    List<String> out = new ArrayList<>();
    if (JobOwner.isRoot(owner)) {
      return out;
    }
    TaskCredentials.Creds want = TaskCredentials.Creds.of(owner);
    Set<Integer> named = new HashSet<>();
    for (TaskCredentials t : tasks) {
      if (t.dead() || named.contains(t.pid())) {
        continue;
      }
      String wrong = wrong(t, want, initExe);
      if (wrong != null) {
        named.add(t.pid());
        out.add(t.describe() + " " + wrong);
      }
    }
    return out;
  }

  /** Why this thread breaks the rule, or null. */
  private static String wrong(TaskCredentials t, TaskCredentials.Creds want, String initExe) {
    if (t.creds() == null) {
      return "has no credentials recorded (CRIU would restore it with its own, root's)";
    }
    if (t.creds().equals(want) || isInit(t, initExe) && t.creds().rootUids()) {
      return null;
    }
    return "runs as " + t.creds().describe();
  }

  /** pid 1, or a child of pid 1 that has not executed anything else yet. */
  private static boolean isInit(TaskCredentials t, String initExe) {
    return !initExe.isEmpty() && t.exe().equals(initExe) && (t.pid() == 1 || t.ppid() == 1);
  }

  /** {@code violations} as one clause: the first few, the rest counted. */
  static String named(List<String> violations) {
    StringBuilder s = new StringBuilder();
    for (int i = 0; i < Math.min(NAMED, violations.size()); i++) {
      s.append(i == 0 ? "" : "; ").append(violations.get(i));
    }
    if (violations.size() > NAMED) {
      s.append("; and ").append(violations.size() - NAMED).append(" more");
    }
    return s.toString();
  }

  /**
   * What the owner runs as, to follow {@link #named}: {@code "; its owner alice (...) runs as"}.
   */
  static String ownerLine(Owner owner) {
    return "; its owner "
        + JobOwner.describe(owner)
        + " runs as "
        + TaskCredentials.Creds.of(owner).describe();
  }
}
