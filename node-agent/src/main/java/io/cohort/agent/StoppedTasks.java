package io.cohort.agent;

import java.util.ArrayList;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The tasks of a vhost left stopped by a dump that nobody finished: a CRIU that died while it held
 * them can leave them in state T (stopped), which nothing else would ever continue. A starting
 * agent wakes them with SIGCONT. A task in state t (traced) is still held by a live tracer: a CRIU
 * left by the previous agent, whose hook lets it go within a second of that agent's death; it is
 * only logged.
 *
 * <p>The vhost's tasks are its init and its descendants ({@link ProcTree}).
 */
final class StoppedTasks {
  private static final Logger log = LoggerFactory.getLogger(StoppedTasks.class);
  private static final int SIGCONT = 18;

  private StoppedTasks() {}

  /** Sends SIGCONT to every task of the tree under {@code init} in state T; returns their pids. */
  static List<Long> resume(ProcessIdentity init, String who) {
    List<Long> continued = new ArrayList<>();
    if (!init.isAlive()) {
      return continued;
    }
    for (long pid : ProcTree.of(init.pid())) {
      ProcStatus status = ProcStatus.read(ProcTree.dir(pid).resolve("status"));
      char state = status == null ? '?' : status.state();
      if (state == 'T') {
        if (LibC.INSTANCE.kill((int) pid, SIGCONT) == 0) {
          continued.add(pid);
        }
      } else if (state == 't') {
        log.warn(
            "{}: task {} is held by tracer {} (a CRIU left by the previous agent lets it go "
                + "within a second)",
            who,
            pid,
            status.tracerPid());
      }
    }
    if (!continued.isEmpty()) {
      log.warn(
          "{}: tasks {} were left stopped (a dump nobody finished): continued", who, continued);
    }
    return continued;
  }
}
