package io.cohort.cli;

import io.cohort.proto.v1.CheckpointProgress;
import io.cohort.proto.v1.CheckpointRequest;
import io.cohort.proto.v1.SignalJobRequest;
import io.grpc.StatusRuntimeException;
import java.lang.reflect.InvocationTargetException;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.util.Iterator;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * What an attached `cohort run` or `cohort restart` does with the signals it gets, as a user of
 * mpirun expects: SIGUSR1 and SIGUSR2 are passed on to the job's command (mpirun passes them on to
 * its ranks); SIGTERM, which a batch system sends before it takes the nodes back (preemption, the
 * end of a time limit), takes a checkpoint and stops the job, so that it can be restarted later.
 * Ctrl-C (SIGINT) still only detaches.
 *
 * <p>The JDK's one way to catch a signal is sun.misc.Signal (module jdk.unsupported, exported for
 * this use); it is reached by reflection because javac warns of it as internal API at every use,
 * and the build refuses warnings.
 */
final class AttachedSignals {
  private final Cli cli;
  private final String jobId;
  private final AtomicBoolean stopping = new AtomicBoolean();
  private final CountDownLatch stopped = new CountDownLatch(1);

  private AttachedSignals(Cli cli, String jobId) {
    this.cli = cli;
    this.jobId = jobId;
  }

  /** Installs the handlers for the rest of this process's life (it follows {@code jobId}). */
  static AttachedSignals install(Cli cli, String jobId) {
    AttachedSignals s = new AttachedSignals(cli, jobId);
    s.on("USR1", () -> s.forward("USR1"));
    s.on("USR2", () -> s.forward("USR2"));
    s.on("TERM", s::checkpointAndStop);
    return s;
  }

  /**
   * Waits for the checkpoint a SIGTERM started to be answered: the job stops at its commit, before
   * the answer arrives, and the process must not close its connection in between.
   */
  void awaitCheckpoint() {
    if (!stopping.get()) {
      return;
    }
    try {
      stopped.await(10, TimeUnit.MINUTES);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
    }
  }

  private void forward(String signal) {
    try {
      cli.call(60)
          .signalJob(SignalJobRequest.newBuilder().setJobId(jobId).setSignal(signal).build());
    } catch (StatusRuntimeException e) {
      cli.err.println(
          "cohort: SIG" + signal + " not passed on to job " + jobId + ": " + Cli.message(e));
    }
  }

  private void checkpointAndStop() {
    if (!stopping.compareAndSet(false, true)) {
      return; // one checkpoint is enough; the job stops when it is committed
    }
    cli.err.printf(
        "cohort: SIGTERM: checkpointing job %s and stopping it (`cohort restart %s` goes on)%n",
        jobId, jobId);
    try {
      Iterator<CheckpointProgress> it =
          cli.call(3600)
              .checkpoint(CheckpointRequest.newBuilder().setJobId(jobId).setStop(true).build());
      String ckpt = "";
      while (it.hasNext()) {
        CheckpointProgress p = it.next();
        if (p.hasResult()) {
          ckpt = p.getResult().getCheckpointId();
        }
      }
      cli.err.printf("cohort: checkpoint %s committed, job %s stopped%n", ckpt, jobId);
    } catch (StatusRuntimeException e) {
      // --stop stops the job even when the checkpoint fails; the message says where it stands.
      cli.err.println("cohort: " + Cli.message(e));
    } finally {
      stopped.countDown();
    }
  }

  /** sun.misc.Signal.handle(new Signal(name), handler), by reflection (see the class comment). */
  private void on(String name, Runnable action) {
    try {
      Class<?> signal = Class.forName("sun.misc.Signal");
      Class<?> handlerType = Class.forName("sun.misc.SignalHandler");
      Object handler =
          Proxy.newProxyInstance(
              handlerType.getClassLoader(),
              new Class<?>[] {handlerType},
              (proxy, method, args) -> {
                if (method.getName().equals("handle")) {
                  action.run();
                  return null;
                }
                return switch (method.getName()) {
                  case "hashCode" -> System.identityHashCode(proxy);
                  case "equals" -> proxy == args[0];
                  default -> "AttachedSignals." + name;
                };
              });
      Method handle = signal.getMethod("handle", signal, handlerType);
      handle.invoke(null, signal.getConstructor(String.class).newInstance(name), handler);
    } catch (ReflectiveOperationException | RuntimeException e) {
      Throwable cause = e instanceof InvocationTargetException ite ? ite.getCause() : e;
      cli.err.printf(
          "cohort: SIG%s will not reach job %s from here (%s); `cohort kill --signal %s %s` "
              + "does%n",
          name, jobId, cause, name, jobId);
    }
  }
}
