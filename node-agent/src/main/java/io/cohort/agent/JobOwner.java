package io.cohort.agent;

import io.cohort.common.DurableFiles;
import io.cohort.proto.v1.Owner;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Whom a job's processes run as, and what that means for the files the agent keeps for it. The
 * coordinator passes the owner in CreateVhostRequest and RestoreVhostRequest; an unset owner is
 * root (uid 0, gid 0, no groups), as every job was before owners existed.
 *
 * <ul>
 *   <li>cohort-init gets {@code --uid --gid --groups}: the job's command and every command mpirun
 *       starts in the vhost run with exactly these credentials (native/README.md);
 *   <li>Open MPI's run-as-root variables are set for root's jobs only, and removed from anyone
 *       else's environment;
 *   <li>the output logs and the stdin belong to the owner, mode 0600: readable by the owner and
 *       root only (pid 1, root, writes the logs; the job reads its stdin through the fd pid 1
 *       opened);
 *   <li>the vhost's directory stays root's, mode 0711: the job's processes reach the files they
 *       need there by name (the hostfile, the ready file), nobody else can list it, and the owner
 *       cannot put a symlink where root writes (the status file, the logs).
 * </ul>
 */
final class JobOwner {
  /** Root's job: what an unset owner means. */
  static final Owner ROOT = Owner.getDefaultInstance();

  /** The owner's files: CRIU restores an open file only with the mode it had at the dump. */
  static final Set<PosixFilePermission> FILE_MODE = PosixFilePermissions.fromString("rw-------");

  private static final Set<PosixFilePermission> DIR_MODE =
      PosixFilePermissions.fromString("rwx--x--x");

  private static final List<String> RUN_AS_ROOT =
      List.of("OMPI_ALLOW_RUN_AS_ROOT", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM");

  private JobOwner() {}

  static boolean isRoot(Owner o) {
    return o.getUid() == 0;
  }

  /** How the owner is named in messages and logs. */
  static String describe(Owner o) {
    String name = o.getUser().isEmpty() ? "uid " + o.getUid() : o.getUser();
    return name + " (" + o.getUid() + ":" + o.getGid() + ")";
  }

  /** cohort-init's options that make the job's processes the owner's. */
  static List<String> initOptions(Owner o) {
    String groups =
        o.getGroupsList().stream().map(Integer::toUnsignedString).collect(Collectors.joining(","));
    return List.of(
        "--uid",
        Integer.toUnsignedString(o.getUid()),
        "--gid",
        Integer.toUnsignedString(o.getGid()),
        "--groups",
        groups);
  }

  /**
   * Open MPI refuses to run as root unless told it may: the variables go into root's jobs only, and
   * out of anyone else's (a client's environment could carry them).
   */
  static void runAsRootVariables(Owner o, Map<String, String> env) {
    for (String v : RUN_AS_ROOT) {
      if (isRoot(o)) {
        env.putIfAbsent(v, "1");
      } else {
        env.remove(v);
      }
    }
  }

  /** A vhost's directory: root's, that the job's processes may only traverse. */
  static void prepareDir(Path dir) throws IOException {
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, DIR_MODE);
  }

  /** Gives the job's files (those that exist) to the owner, readable by it and root only. */
  static void giveFiles(Owner o, List<Path> files) {
    List<Path> done = new ArrayList<>();
    try {
      for (Path f : files) {
        if (!Files.exists(f, LinkOption.NOFOLLOW_LINKS)) {
          continue;
        }
        Files.setPosixFilePermissions(f, FILE_MODE);
        Files.setAttribute(f, "unix:uid", o.getUid(), LinkOption.NOFOLLOW_LINKS);
        Files.setAttribute(f, "unix:gid", o.getGid(), LinkOption.NOFOLLOW_LINKS);
        done.add(f);
      }
    } catch (IOException | UnsupportedOperationException e) {
      throw DurableFiles.failure(
          "cannot give the job's files to " + describe(o) + " (done: " + done + ")",
          e instanceof IOException io ? io : new IOException(e));
    }
  }
}
