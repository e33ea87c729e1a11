package io.cohort.agent;

import io.cohort.proto.v1.Owner;
import java.util.List;
import java.util.stream.Collectors;

/**
 * One thread of a vhost and whom it runs as: as CRIU recorded it in an image ({@link
 * ImageCredentials}) or as {@code /proc} shows it ({@link RunningTasks}). {@link OwnerCredentials}
 * says whether that is allowed.
 *
 * @param hostPid the task's pid on the node, for a running task; 0 for one of an image
 * @param pid the task's pid in the vhost's pid namespace (1 is the vhost's init)
 * @param tid the thread's id there (the pid for the leader)
 * @param ppid the parent's pid there (0 for the init)
 * @param comm the task's name
 * @param exe the path of its executable, as the task sees it; "" when unknown
 * @param dead a zombie: CRIU restores it as a process that exits at once, running nothing of the
 *     image
 * @param creds its credentials; null when the image records none (CRIU would then leave it with its
 *     own, root's)
 */
record TaskCredentials(
    long hostPid, int pid, int tid, int ppid, String comm, String exe, boolean dead, Creds creds) {

  /**
   * What a thread runs as: real, effective, saved and file-system ids, supplementary groups
   * (sorted, without repeats), and the capability sets that give privileges (the bounding set only
   * limits them, so it is not kept).
   */
  record Creds(
      int uid,
      int euid,
      int suid,
      int fsuid,
      int gid,
      int egid,
      int sgid,
      int fsgid,
      List<Integer> groups,
      long capInh,
      long capPrm,
      long capEff,
      long capAmb) {

    Creds {
      groups = groups.stream().distinct().sorted(Integer::compareUnsigned).toList();
    }

    /** Exactly the owner's: its uid and gid everywhere, its groups, no capability. */
    static Creds of(Owner o) {
      int u = o.getUid();
      int g = o.getGid();
      return new Creds(u, u, u, u, g, g, g, g, o.getGroupsList(), 0, 0, 0, 0);
    }

    /** Real, effective, saved and file-system uids all 0. */
    boolean rootUids() {
      return uid == 0 && euid == 0 && suid == 0 && fsuid == 0;
    }

    boolean hasCapabilities() {
      return (capInh | capPrm | capEff | capAmb) != 0;
    }

    /**
     * One line: {@code uid 1001/0/0/1001 gid 100 groups 100,27, capabilities permitted=0x2000
     * effective=0x2000 inheritable=0 ambient=0} (ids real/effective/saved/file-system, one number
     * when they are all the same), or {@code ..., no capabilities}.
     */
    String describe() {
      String caps =
          hasCapabilities()
              ? String.format(
                  "capabilities permitted=%#x effective=%#x inheritable=%#x ambient=%#x",
                  capPrm, capEff, capInh, capAmb)
              : "no capabilities";
      return String.format(
          "uid %s gid %s groups %s, %s",
          ids(uid, euid, suid, fsuid),
          ids(gid, egid, sgid, fsgid),
          groups.isEmpty()
              ? "none"
              : groups.stream().map(Integer::toUnsignedString).collect(Collectors.joining(",")),
          caps);
    }

    private static String ids(int r, int e, int s, int fs) {
      if (r == e && e == s && s == fs) {
        return Integer.toUnsignedString(r);
      }
      return String.join(
          "/",
          Integer.toUnsignedString(r),
          Integer.toUnsignedString(e),
          Integer.toUnsignedString(s),
          Integer.toUnsignedString(fs));
    }
  }

  /**
   * How the task is named in messages: {@code process 7 (ping, /usr/bin/ping)} in an image, {@code
   * process 4242 (ping, /usr/bin/ping; pid 7 in its vhost)} running.
   */
  String describe() {
    String what = exe.isEmpty() ? comm : comm + ", " + exe;
    String thread = tid == pid ? "" : " thread " + tid;
    if (hostPid == 0) {
      return "process " + pid + thread + " (" + what + ")";
    }
    return "process " + hostPid + thread + " (" + what + "; pid " + pid + " in its vhost)";
  }
}
