package io.cohort.agent;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * CRIU as the agent uses it. {@link CriuEngine} runs the real binary; tests use a fake that plays
 * CRIU's side of the action-script protocol (see {@link DumpSession}).
 */
interface Criu {
  /** `criu --version`, e.g. "4.2". */
  String version() throws CriuException;

  /**
   * Starts a dump of the tree rooted at {@code spec.pid()}. CRIU runs the action script {@code
   * spec.actionScript()} (with {@code spec.env()}) at the network lock and after the images are
   * written; the post-dump hook holds the frozen tree until the agent decides.
   */
  Process startDump(DumpSpec spec) throws IOException;

  /**
   * Starts a detached restore of the tree saved in {@code spec.images()}. CRIU runs the action
   * script at pre-resume, the tree restored and its network unlocked, and the script holds it there
   * until the agent lets it run (see {@link RestoreHolds}).
   */
  Process startRestore(RestoreSpec spec) throws IOException;

  /**
   * One dump.
   *
   * @param pid host pid of the vhost's init (the root of the dumped tree)
   * @param images where CRIU writes the image files
   * @param work where CRIU writes its log
   * @param actionScript the agent's action script
   * @param env environment of the action script (the hook's FIFOs, the agent's identity)
   * @param leaveRunning resume the tasks after a committed dump (else: kill them, --stop)
   * @param extra further options (e.g. the vhost's external veth)
   */
  record DumpSpec(
      long pid,
      Path images,
      Path work,
      Path actionScript,
      Map<String, String> env,
      boolean leaveRunning,
      List<String> extra) {}

  /**
   * One restore.
   *
   * @param images the image files
   * @param work where CRIU writes its log
   * @param pidfile where CRIU writes the host pid of the restored tree's root
   * @param actionScript the agent's action script
   * @param env environment of the action script
   * @param extra further options (e.g. the vhost's external veth)
   */
  record RestoreSpec(
      Path images,
      Path work,
      Path pidfile,
      Path actionScript,
      Map<String, String> env,
      List<String> extra) {}

  /** Result of a restore: the host pid of the restored vhost init, and CRIU's own time. */
  record Restored(long pid, long criuMillis) {}
}
