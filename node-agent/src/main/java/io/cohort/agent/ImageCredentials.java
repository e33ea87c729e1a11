package io.cohort.agent;

import io.cohort.common.CohortException;
import io.cohort.proto.criu.CoreEntry;
import io.cohort.proto.criu.CredsEntry;
import io.cohort.proto.criu.FileEntry;
import io.cohort.proto.criu.MmEntry;
import io.cohort.proto.criu.PstreeEntry;
import io.cohort.proto.criu.TaskCoreEntry;
import io.cohort.proto.criu.ThreadCoreEntry;
import io.cohort.proto.v1.Owner;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The credentials CRIU will give each thread of an image at restore, read from the image itself
 * before CRIU runs, and checked against the job's owner ({@link OwnerCredentials}).
 *
 * <p>What CRIU 4.2 restores (criu/cr-restore.c): the tasks of {@code pstree.img}; for each, its
 * state from the {@code tc} of {@code core-PID.img}; for a live task, each thread of its {@code
 * threads} list with the {@code thread_core.creds} of {@code core-TID.img} (the first entry only).
 * A zombie is restored as a process that exits at once, running nothing of the image. A thread
 * without {@code creds} would get them from a pre-1.x {@code creds-PID.img}, and one without {@code
 * thread_core} keeps CRIU's own (root's): both are refused, as Cohort's CRIU never writes them. The
 * executable, for {@link OwnerCredentials}' exception for the init, is {@code mm-PID.img}'s {@code
 * exe_file_id} looked up in {@code files.img}.
 */
final class ImageCredentials {
  private static final int TASK_DEAD = 2;
  private static final int REG = 1;

  private ImageCredentials() {}

  /**
   * Refuses, before anything changes, an image a non-root owner's restore must not run: any task
   * whose credentials are not the owner's (see {@link OwnerCredentials}).
   *
   * @param what names the image in the message ("checkpoint 12.3, vhost v12-0")
   * @param initExe the vhost's init binary (the manifest's init path)
   */
  static void check(Owner owner, Path criuDir, String initExe, String what) {
    if (JobOwner.isRoot(owner)) {
      return;
    }
    List<TaskCredentials> tasks;
    try {
      tasks = read(criuDir);
    } catch (IOException e) {
      throw CohortException.dataLoss(
          "%s: cannot read the credentials its processes were dumped with (%s); the image is "
              + "damaged or was changed: restart from another checkpoint",
          what, e.getMessage());
    }
    List<String> wrong = OwnerCredentials.violations(owner, initExe, tasks);
    if (!wrong.isEmpty()) {
      throw CohortException.denied(
          "%s would run processes with other credentials than its owner's: %s%s. Cohort restores "
              + "a job only with its owner's credentials; the image was changed, or a process of "
              + "the job gained privileges (a set-id program) after the checkpoint began: restart "
              + "from another checkpoint",
          what, OwnerCredentials.named(wrong), OwnerCredentials.ownerLine(owner));
    }
  }

  /**
   * Loads what a check uses (protobuf's descriptors of CRIU's messages, about 60 ms) on an entry
   * made here, so that a user's first checkpoint after the agent starts does not pay for it.
   */
  static void warmUp() throws IOException {
    CoreEntry made =
        CoreEntry.newBuilder()
            .setTc(TaskCoreEntry.newBuilder().setComm("warm-up"))
            .setThreadCore(
                ThreadCoreEntry.newBuilder()
                    .setCreds(CredsEntry.newBuilder().addGroups(1).addCapEff(0)))
            .build();
    creds(CriuImageFile.parse(made.toByteArray(), CoreEntry.parser()));
    CriuImageFile.parse(PstreeEntry.getDefaultInstance().toByteArray(), PstreeEntry.parser());
    CriuImageFile.parse(MmEntry.getDefaultInstance().toByteArray(), MmEntry.parser());
    CriuImageFile.parse(FileEntry.getDefaultInstance().toByteArray(), FileEntry.parser());
  }

  /** Every thread the image holds, in {@code pstree.img}'s order. */
  static List<TaskCredentials> read(Path criuDir) throws IOException {
    List<PstreeEntry> tree =
        CriuImageFile.readAll(
            criuDir.resolve("pstree.img"), CriuImageFile.PSTREE_MAGIC, PstreeEntry.parser());
    if (tree.isEmpty()) {
      throw new CriuImageFile.BadImage(criuDir.resolve("pstree.img"), "no task");
    }
    Map<Integer, String> files = null; // files.img, read once a live task's executable is wanted
    List<TaskCredentials> out = new ArrayList<>();
    for (PstreeEntry task : tree) {
      int pid = task.getPid();
      CoreEntry leader = core(criuDir, pid);
      if (!leader.hasTc()) {
        throw new CriuImageFile.BadImage(file(criuDir, "core", pid), "no task state");
      }
      String comm = leader.getTc().getComm();
      if (leader.getTc().getTaskState() == TASK_DEAD) {
        out.add(new TaskCredentials(0, pid, pid, task.getPpid(), comm, "", true, null));
        continue;
      }
      if (files == null) {
        files = regularFiles(criuDir);
      }
      String exe = executable(criuDir, pid, files);
      // The leader's own core and every listed thread's: whichever CRIU takes for a thread.
      Set<Integer> tids = new LinkedHashSet<>();
      tids.add(pid);
      tids.addAll(task.getThreadsList());
      for (int tid : tids) {
        CoreEntry c = tid == pid ? leader : core(criuDir, tid);
        out.add(new TaskCredentials(0, pid, tid, task.getPpid(), comm, exe, false, creds(c)));
      }
    }
    return out;
  }

  private static CoreEntry core(Path criuDir, int tid) throws IOException {
    return CriuImageFile.readFirst(
        file(criuDir, "core", tid), CriuImageFile.CORE_MAGIC, CoreEntry.parser());
  }

  /** {@code KIND-ID.img}: a task's or thread's image file of that kind. */
  private static Path file(Path criuDir, String kind, int id) {
    return criuDir.resolve(kind + "-" + Integer.toUnsignedString(id) + ".img");
  }

  private static TaskCredentials.Creds creds(CoreEntry c) {
    if (!c.hasThreadCore() || !c.getThreadCore().hasCreds()) {
      return null;
    }
    CredsEntry e = c.getThreadCore().getCreds();
    return new TaskCredentials.Creds(
        e.getUid(),
        e.getEuid(),
        e.getSuid(),
        e.getFsuid(),
        e.getGid(),
        e.getEgid(),
        e.getSgid(),
        e.getFsgid(),
        e.getGroupsList(),
        caps(e.getCapInhList()),
        caps(e.getCapPrmList()),
        caps(e.getCapEffList()),
        caps(e.getCapAmbList()));
  }

  /**
   * A capability set from CRIU's 32-bit words, least significant first. A bit set in a word past
   * the second (a kernel with more than 64 capabilities) sets bit 63, so the set is never empty.
   */
  static long caps(List<Integer> words) {
    long v = 0;
    for (int i = 0; i < words.size(); i++) {
      long w = Integer.toUnsignedLong(words.get(i));
      if (i < 2) {
        v |= w << (32 * i);
      } else if (w != 0) {
        v |= Long.MIN_VALUE;
      }
    }
    return v;
  }

  /** The path of the task's executable, or "" if the image does not name a regular file. */
  private static String executable(Path criuDir, int pid, Map<Integer, String> files)
      throws IOException {
    MmEntry mm =
        CriuImageFile.readFirst(file(criuDir, "mm", pid), CriuImageFile.MM_MAGIC, MmEntry.parser());
    return mm.hasExeFileId() ? files.getOrDefault(mm.getExeFileId(), "") : "";
  }

  /** The regular files of {@code files.img} by id (empty if the image has none). */
  private static Map<Integer, String> regularFiles(Path criuDir) throws IOException {
    Map<Integer, String> out = new HashMap<>();
    Path f = criuDir.resolve("files.img");
    for (FileEntry e : CriuImageFile.readAll(f, CriuImageFile.FILES_MAGIC, FileEntry.parser())) {
      if (e.getType() == REG && e.hasReg()) {
        if (e.getReg().getId() != e.getId()) {
          throw new CriuImageFile.BadImage(
              f, "file id " + e.getId() + " holds file " + e.getReg().getId());
        }
        // Of two entries with one id, CRIU finds the later (criu/files.c, file_desc_add).
        out.put(e.getId(), e.getReg().getName());
      }
    }
    return out;
  }
}
