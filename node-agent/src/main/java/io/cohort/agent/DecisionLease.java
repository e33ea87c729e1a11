package io.cohort.agent;

import io.cohort.proto.v1.AbandonedDump;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledThreadPoolExecutor;
import java.util.concurrent.ThreadFactory;
import java.util.concurrent.TimeUnit;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The agents' half of "no fault leaves a job frozen": once the agent has answered the coordinator,
 * a dump waits for its next word ({@link ParticipantDump.State#waiting}) for its lease at most.
 * When the lease runs out in the state it was armed in, {@link Expiry} aborts the dump on the
 * agent's own authority (the EXPIRED transition of {@link ParticipantDump}). Whatever the agent
 * ends that way, and what it finds abandoned by its predecessor, is kept here until a heartbeat has
 * told the coordinator.
 *
 * <p>The timer only hands off: the expiry itself waits for CRIU to let the tasks go, so it runs on
 * a thread of its own. Both pools let their threads go when idle.
 */
final class DecisionLease {
  private static final Logger log = LoggerFactory.getLogger(DecisionLease.class);

  /** Aborts {@code dump} if it still waits where transition {@code move} left it. */
  @FunctionalInterface
  interface Expiry {
    void expired(ParticipantDump dump, long move);
  }

  private final Expiry expiry;
  private final ScheduledThreadPoolExecutor timer;
  private final ExecutorService work = Executors.newCachedThreadPool(daemon("decision-lease"));

  /** Dumps ended without the coordinator's decision, by checkpoint/vhost. Guarded by itself. */
  private final Map<String, AbandonedDump> unreported = new LinkedHashMap<>();

  DecisionLease(Expiry expiry) {
    this.expiry = expiry;
    this.timer = new ScheduledThreadPoolExecutor(1, daemon("decision-lease-timer"));
    timer.setKeepAliveTime(10, TimeUnit.SECONDS);
    timer.allowCoreThreadTimeOut(true);
    timer.setRemoveOnCancelPolicy(true);
  }

  /**
   * The dump entered a waiting state with transition {@code move}: it waits {@code time} at most.
   */
  void arm(ParticipantDump dump, long move, Duration time) {
    timer.schedule(
        () ->
            work.execute(
                () -> {
                  try {
                    expiry.expired(dump, move);
                  } catch (RuntimeException e) {
                    log.error("{}: the abort at the end of its lease failed", dump, e);
                  }
                }),
        time.toMillis(),
        TimeUnit.MILLISECONDS);
  }

  /** Keeps a dump the agent ended on its own for the coordinator. */
  void abandoned(String ckpt, String vhost, String reason, boolean imageKept) {
    AbandonedDump d =
        AbandonedDump.newBuilder()
            .setCheckpointId(ckpt)
            .setVhostId(vhost)
            .setReason(reason)
            .setImageKept(imageKept)
            .build();
    synchronized (unreported) {
      unreported.put(ckpt + "/" + vhost, d);
    }
  }

  /** What the coordinator has not been told yet, oldest first. */
  List<AbandonedDump> unreported() {
    synchronized (unreported) {
      return new ArrayList<>(unreported.values());
    }
  }

  /** A heartbeat carrying {@code sent} was answered: the coordinator knows them. */
  void reported(Collection<AbandonedDump> sent) {
    synchronized (unreported) {
      sent.forEach(d -> unreported.remove(d.getCheckpointId() + "/" + d.getVhostId(), d));
    }
  }

  private static ThreadFactory daemon(String name) {
    return r -> {
      Thread t = new Thread(r, name);
      t.setDaemon(true);
      return t;
    };
  }
}
