package io.cohort.agent;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Restored vhosts whose processes CRIU still holds stopped, at its pre-resume hook, until the
 * coordinator releases their job. A job's vhosts are restored one after another, on several nodes,
 * and its network is configured after the last: a process let go at the end of its own restore
 * would send into a network where its peers do not exist yet (a UDP datagram is then lost; TCP
 * retransmits, but only until its timeout). Held, the job starts as one, like after a checkpoint.
 *
 * <p>A hold has a lease (the CRIU timeout): a coordinator that never releases the job does not
 * leave it stopped for ever. An agent that dies leaves nothing held: the action script gives up
 * waiting when the agent is gone, and CRIU lets the tasks run.
 */
final class RestoreHolds {
  private static final Logger log = LoggerFactory.getLogger(RestoreHolds.class);

  private final Criu criu;
  private final Path actionScript;
  private final Map<String, String> agentEnv;
  private final Duration timeout;
  private final Map<String, CriuSession> held = new ConcurrentHashMap<>();
  private final ScheduledExecutorService leases =
      Executors.newSingleThreadScheduledExecutor(
          r -> {
            Thread t = new Thread(r, "restore-leases");
            t.setDaemon(true);
            return t;
          });

  /**
   * @param self the agent, as the action script checks it is still there
   * @param timeout how long CRIU may take to restore, and how long a restore is held at most
   */
  RestoreHolds(Criu criu, Path actionScript, ProcessIdentity self, Duration timeout) {
    this.criu = criu;
    this.actionScript = actionScript;
    this.agentEnv = CriuSession.agentEnv(self);
    this.timeout = timeout;
  }

  /**
   * Restores the tree saved in {@code images} and returns once CRIU holds it, restored and not yet
   * running; {@link #release} lets it go. {@code work} gets CRIU's log and the hook's FIFOs.
   */
  Criu.Restored restore(String vhostId, Path images, Path work, List<String> extra)
      throws CriuException, IOException {
    Files.createDirectories(work);
    Path pidfile = work.resolve("restore.pid");
    Files.deleteIfExists(pidfile);
    Map<String, String> env = new HashMap<>(agentEnv);
    env.put("COHORT_HOOK_DIR", work.resolve("hook").toString());
    env.put("COHORT_RESTORE", "1");
    CriuSession s =
        CriuSession.start(
            work.resolve("hook"),
            timeout,
            () ->
                criu.startRestore(
                    new Criu.RestoreSpec(images, work, pidfile, actionScript, env, extra)));
    String event = s.next();
    if (!"restored".equals(event)) {
      if (CriuSession.TIMED_OUT.equals(event)) {
        log.error("restore of {} took longer than {}; killing criu", vhostId, timeout);
        s.killCriu();
      }
      Integer rc = s.awaitExit(timeout);
      s.close();
      throw new CriuException(rc == null ? -1 : rc, work.resolve("restore.log"));
    }
    s.reached();
    long pid;
    try {
      pid = Long.parseLong(Files.readString(pidfile).strip());
    } catch (IOException | NumberFormatException e) {
      finish(vhostId, s);
      throw new IOException("criu held the restore of " + vhostId + " but wrote no pid", e);
    }
    CriuSession earlier = held.put(vhostId, s);
    if (earlier != null) {
      finish(vhostId, earlier); // cannot happen: a vhost is restored only when not running
    }
    ScheduledFuture<?> unused =
        leases.schedule(
            () -> {
              if (held.remove(vhostId, s)) {
                log.warn(
                    "restored vhost {} was not released within {}: letting it run",
                    vhostId,
                    timeout);
                finish(vhostId, s);
              }
            },
            timeout.toMillis(),
            TimeUnit.MILLISECONDS);
    return new Criu.Restored(pid, s.millisToReached());
  }

  /** Lets the held ones of {@code vhostIds} run; returns how many were held. */
  int release(Collection<String> vhostIds) {
    int n = 0;
    for (String v : vhostIds) {
      CriuSession s = held.remove(v);
      if (s != null) {
        finish(v, s);
        n++;
      }
    }
    return n;
  }

  boolean isHeld(String vhostId) {
    return held.containsKey(vhostId);
  }

  /** Answers the hook and waits for CRIU to let the tasks go and exit. */
  private void finish(String vhostId, CriuSession s) {
    try {
      s.answer("resume");
    } catch (IOException e) {
      log.warn("{}: cannot answer criu's pre-resume hook: {}", vhostId, e.toString());
    }
    Integer rc = s.awaitExit(timeout);
    if (rc == null) {
      log.error(
          "{}: criu did not let the restored tasks go within {}; killing it", vhostId, timeout);
      s.killCriu();
    } else if (rc != 0) {
      log.warn("{}: criu exited with {} after letting the restored tasks go", vhostId, rc);
    }
    s.close();
  }
}
