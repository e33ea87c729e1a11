package io.cohort.coordinator;

import io.cohort.common.CohortException;
import java.time.Duration;
import java.util.Collection;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.ScheduledFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.BiConsumer;
import java.util.function.Consumer;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The plumbing of the {@link CheckpointBarrier}'s phases: agent calls fanned out on {@code io} with
 * their answers brought back to the serial executor, tagged with the phase that asked (an answer
 * that comes after its phase ended is dropped), and the phase timer. It decides nothing: the
 * barrier says which phase is current, runs every step through its one guard and decides what a
 * failure does. Touched only on the serial executor.
 */
final class PhaseFanOut {
  private static final Logger log = LoggerFactory.getLogger(PhaseFanOut.class);

  private final String who;
  private final Executor io;
  private final ScheduledExecutorService serial;
  private final Supplier<BarrierPhase> current;
  private final Consumer<Runnable> guarded;
  private final Consumer<Throwable> fail;

  // Touched only on `serial`.
  private ScheduledFuture<?> timer;

  /**
   * {@code current} is the barrier's phase, {@code guarded} runs a step as the barrier's guard does
   * and {@code fail} is its abort.
   */
  PhaseFanOut(
      String who,
      Executor io,
      ScheduledExecutorService serial,
      Supplier<BarrierPhase> current,
      Consumer<Runnable> guarded,
      Consumer<Throwable> fail) {
    this.who = who;
    this.io = io;
    this.serial = serial;
    this.current = current;
    this.guarded = guarded;
    this.fail = fail;
  }

  /**
   * Asks every target in parallel; each answer goes to {@code each} on the serial executor; once
   * all answered, {@code then} runs. A failure aborts, unless {@code tolerant} (the abort itself,
   * or after the commit): then it is logged and counted as an answer, so the phase always
   * completes.
   */
  <K, T> void allOf(
      BarrierPhase asked,
      boolean tolerant,
      Collection<K> targets,
      Function<K, Supplier<T>> call,
      BiConsumer<K, T> each,
      Runnable then) {
    int[] pending = {targets.size()};
    if (pending[0] == 0) {
      then.run();
      return;
    }
    for (K target : targets) {
      Supplier<T> supplier = call.apply(target);
      CompletableFuture.supplyAsync(supplier, io)
          .whenCompleteAsync(
              (r, err) ->
                  guarded.accept(
                      () -> {
                        if (current.get() != asked) {
                          log.debug("{}: late answer for {} ignored", who, asked);
                          return;
                        }
                        Throwable cause = err instanceof CompletionException ? err.getCause() : err;
                        if (cause != null && !tolerant) {
                          fail.accept(cause);
                          return;
                        }
                        if (cause != null) {
                          log.warn(
                              "{}: {} on {} failed: {}", who, asked, target, cause.getMessage());
                        } else {
                          each.accept(target, r);
                        }
                        if (--pending[0] == 0) {
                          then.run();
                        }
                      }),
              serial);
    }
  }

  /**
   * The timer of the phase just entered: cancels the previous phase's and, with a {@code timeout},
   * fails the phase if it is still current when the time is up.
   */
  void time(BarrierPhase entered, Duration timeout) {
    if (timer != null) {
      timer.cancel(false);
    }
    if (timeout != null) {
      timer =
          serial.schedule(
              () ->
                  guarded.accept(
                      () -> {
                        if (current.get() == entered) {
                          fail.accept(
                              new CohortException(
                                  CohortException.Kind.DEADLINE_EXCEEDED,
                                  "phase " + entered + " did not finish within " + timeout));
                        }
                      }),
              timeout.toMillis(),
              TimeUnit.MILLISECONDS);
    }
  }
}
