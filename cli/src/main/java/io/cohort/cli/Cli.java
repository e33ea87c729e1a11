package io.cohort.cli;

import com.google.gson.Gson;
import com.google.gson.GsonBuilder;
import io.cohort.common.CohortException;
import io.cohort.common.GrpcErrors;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.GetJobRequest;
import io.cohort.proto.v1.JobEvent;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.OutputStream;
import io.cohort.proto.v1.StreamOutputRequest;
import io.cohort.proto.v1.WatchJobRequest;
import io.grpc.InsecureChannelCredentials;
import io.grpc.ManagedChannel;
import io.grpc.MethodDescriptor;
import io.grpc.StatusRuntimeException;
import io.grpc.okhttp.OkHttpChannelBuilder;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/** What every command shares: the connection to the coordinator, printing, exit codes. */
final class Cli implements AutoCloseable {
  /** Exit code when the job was stopped by a checkpoint (EX_TEMPFAIL: it can be restarted). */
  static final int EXIT_STOPPED = 75;

  /** Exit code when the job was killed by `cohort kill` (128 + SIGKILL). */
  static final int EXIT_KILLED = 137;

  /** Exit code when the job's processes vanished without an exit status. */
  static final int EXIT_LOST = 70;

  /** For --json; built on first use (10 ms of a plain `cohort ps` otherwise). */
  static Gson gson() {
    return JsonHolder.GSON;
  }

  private static final class JsonHolder {
    static final Gson GSON = new GsonBuilder().disableHtmlEscaping().create();
  }

  private final Embedded embedded;
  private final ManagedChannel remote;
  final String where;
  final CohortGrpc.CohortBlockingStub stub;
  final PrintStream out = System.out;
  final PrintStream err = System.err;

  /**
   * A client for a command that changes jobs (run, checkpoint, restart, kill, rm), whose first call
   * is {@code firstCall} (see {@link #Cli(ConnectionOptions, MethodDescriptor)}).
   */
  static Cli forChange(ConnectionOptions options, MethodDescriptor<?, ?> firstCall) {
    Cli cli = new Cli(options, firstCall);
    if (cli.embedded != null) {
      cli.embedded.sweepImages();
    }
    return cli;
  }

  /**
   * A client; in the embedded mode, for a query (see {@link #forChange}). Over TCP, the MUNGE
   * credential for {@code firstCall}, the command's first call, is made with the connection, by the
   * program that dials it ({@link TlsDialer#dialAhead}); a command whose first call is another gets
   * its credentials the usual way, only a few milliseconds later.
   */
  Cli(ConnectionOptions options, MethodDescriptor<?, ?> firstCall) {
    Embedded.Settings settings = Embedded.Settings.fromEnvironment();
    String address = options.resolve(settings);
    if (address == null) {
      if (PeerIdentity.effectiveUid() != 0) {
        // The embedded mode is this process acting as the daemons: it needs root, and would
        // give a user nothing the daemons' checks would not.
        throw CohortException.denied(
            "no coordinator to talk to, and only root may run jobs without one (the embedded "
                + "mode); ask the operator to start the daemons (`cohort cluster up` for a "
                + "cluster on this machine), or name a coordinator with --coordinator unix:PATH");
      }
      try {
        embedded = new Embedded(settings);
      } catch (IOException e) {
        throw new IllegalStateException("cannot start the embedded coordinator: " + e, e);
      }
      remote = null;
      where = "embedded coordinator";
      stub = CohortGrpc.newBlockingStub(embedded.channel());
    } else {
      embedded = null;
      boolean local = address.startsWith("unix:");
      Munge munge = null;
      TlsDialer tls = null;
      if (local) {
        UnixSocketDialer dialer = new UnixSocketDialer(socketPath(address));
        dialer.dialAhead();
        remote = channel(dialer, "localhost");
      } else {
        munge = Munge.system();
        tls =
            TlsDialer.to(
                address, settings.nativeDir(), ConnectionOptions.trustedCa(settings, address));
        tls.dialAhead(munge, Munge.callPayload(firstCall.getFullMethodName()));
        remote = channel(tls);
        // Connect now, on the channel's threads: HTTP/2's opening exchange is done by the time
        // the command's first call is ready.
        remote.getState(true);
      }
      where = "coordinator at " + address;
      // On its Unix socket the coordinator asks the kernel who calls; over TCP each call proves
      // it with a MUNGE credential.
      stub =
          local
              ? CohortGrpc.newBlockingStub(remote)
              : MungeCredentials.overTlsDialer(munge, tls)
                  .attachTo(CohortGrpc.newBlockingStub(remote));
    }
  }

  /**
   * A channel to the coordinator's Unix socket, {@code unix:PATH}: OkHttp over the JDK's
   * Unix-domain channel ({@link UnixSocketDialer}); the coordinator knows the caller from the
   * kernel.
   */
  static ManagedChannel channel(String address) {
    return channel(new UnixSocketDialer(socketPath(address)), "localhost");
  }

  private static Path socketPath(String address) {
    if (!address.startsWith("unix:")) {
      throw new IllegalArgumentException("not a Unix socket's address: " + address);
    }
    return Path.of(address.substring("unix:".length()));
  }

  /**
   * A channel to the coordinator's client API over TCP, through {@code dialer}'s TLS (its
   * certificate must chain to the cluster's CA and name the host). No client certificate: a user is
   * not a daemon (a call there carries the user's MUNGE credential, {@link MungeCredentials}).
   */
  static ManagedChannel channel(TlsDialer dialer) {
    return channel(dialer, dialer.authority());
  }

  /**
   * OkHttp's transport, not Netty's: one connection and one call need no event loops, and it starts
   * in a fraction of the time (a command is a JVM start). It dials through {@code dialer}: the
   * target it resolves is a placeholder.
   */
  static ManagedChannel channel(StreamSocket.Dialer dialer, String authority) {
    return OkHttpChannelBuilder.forAddress("localhost", 1, InsecureChannelCredentials.create())
        .socketFactory(dialer)
        .overrideAuthority(authority)
        .proxyDetector(target -> null) // a proxy setting must never send it a CONNECT
        .build();
  }

  /** A stub with the deadline every call must have. */
  CohortGrpc.CohortBlockingStub call(long seconds) {
    return stub.withDeadlineAfter(seconds, TimeUnit.SECONDS);
  }

  /** Whether the coordinator is this process's own (the embedded mode). */
  boolean embedded() {
    return embedded != null;
  }

  static boolean interactive() {
    return System.console() != null;
  }

  void json(Map<String, ?> fields) {
    out.println(gson().toJson(fields));
  }

  /**
   * Streams the job's output from {@code offset} until the job stops running, as the job wrote it:
   * its stdout to stdout, its stderr to stderr. Ctrl-C only detaches: the job keeps running, and a
   * message says how to get back to it.
   */
  void follow(String jobId, long offset) {
    follow(jobId, offset, OutputStream.OUTPUT_STREAM_UNSPECIFIED, true);
  }

  /**
   * As {@link #follow(String, long)}, of one stream or both ({@code only} unspecified); with {@code
   * apart} false, everything goes to stdout.
   */
  void follow(String jobId, long offset, OutputStream only, boolean apart) {
    Thread hint =
        new Thread(
            () ->
                err.printf(
                    "%ncohort: detached from job %s; it keeps running "
                        + "(`cohort logs -f %s` to follow it, `cohort wait %s` for its exit status)%n",
                    jobId, jobId, jobId));
    Runtime.getRuntime().addShutdownHook(hint);
    try {
      print(stream(jobId, offset, only, true), apart);
    } finally {
      try {
        Runtime.getRuntime().removeShutdownHook(hint);
      } catch (IllegalStateException shuttingDown) {
        // the hook is running: the user pressed Ctrl-C
      }
    }
  }

  /** The job's output from {@code offset}; with follow, until the job stops running. */
  Iterator<OutputChunk> stream(String jobId, long offset, OutputStream only, boolean follow) {
    return stub.withDeadlineAfter(follow ? 30 * 24 * 60 : 10, TimeUnit.MINUTES)
        .streamOutput(
            StreamOutputRequest.newBuilder()
                .setJobId(jobId)
                .setOffset(offset)
                .setFollow(follow)
                .setOnly(only)
                .build());
  }

  /** Writes the chunks as they come: stderr's to stderr if {@code apart}, all else to stdout. */
  void print(Iterator<OutputChunk> chunks, boolean apart) {
    while (chunks.hasNext()) {
      OutputChunk c = chunks.next();
      boolean toErr = apart && c.getStream() == OutputStream.OUTPUT_STREAM_STDERR;
      PrintStream to = toErr ? err : out;
      if (toErr) {
        out.flush(); // what came before it is seen before it
      }
      to.write(c.getData().toByteArray(), 0, c.getData().size());
      to.flush();
    }
  }

  JobInfo job(String jobId) {
    return call(30).getJob(GetJobRequest.newBuilder().setJobId(jobId).build()).getJob();
  }

  /** The job's own exit status, or the documented codes when it did not exit by itself. */
  int exitStatus(JobInfo j) {
    return switch (j.getState()) {
      case JOB_STATE_EXITED -> j.getExitSignal() != 0 ? 128 + j.getExitSignal() : j.getExitCode();
      case JOB_STATE_STOPPED -> {
        err.printf(
            "cohort: job %s was stopped by checkpoint %s; restart it with `cohort restart "
                + "%s`%n",
            j.getJobId(), j.getLatestCheckpoint(), j.getJobId());
        yield EXIT_STOPPED;
      }
      case JOB_STATE_KILLED -> {
        err.printf("cohort: job %s was killed%n", j.getJobId());
        yield EXIT_KILLED;
      }
      case JOB_STATE_LOST -> {
        err.printf(
            "cohort: job %s was lost: its processes vanished without an exit status%n",
            j.getJobId());
        yield EXIT_LOST;
      }
      default -> 1;
    };
  }

  /** Waits until the job is no longer running and returns its exit status. */
  int await(String jobId) {
    // The coordinator pushes each change (WatchJob): waiting costs this process nothing, where
    // polling from a fresh JVM every 200 ms took a measurable share of a 2-core node's CPU
    // from the job (a one-node MPI ping-pong ran 27 % slower while `cohort wait` polled).
    Iterator<JobEvent> events = watch(jobId);
    while (events.hasNext()) {
      JobInfo j = events.next().getJob();
      if (j.getState() != JobState.JOB_STATE_RUNNING) {
        return exitStatus(j);
      }
    }
    return exitStatus(job(jobId)); // the stream ends once the job has ended
  }

  /** The job's state, then one event per change, until it has ended (WatchJob). */
  Iterator<JobEvent> watch(String jobId) {
    return stub.withDeadlineAfter(30, TimeUnit.DAYS)
        .watchJob(WatchJobRequest.newBuilder().setJobId(jobId).build());
  }

  static String state(JobInfo j) {
    return switch (j.getState()) {
      case JOB_STATE_RUNNING -> "running";
      case JOB_STATE_STOPPED -> "stopped";
      case JOB_STATE_EXITED ->
          j.getExitSignal() != 0 ? "signal " + j.getExitSignal() : "exited " + j.getExitCode();
      case JOB_STATE_KILLED -> "killed";
      case JOB_STATE_LOST -> "lost";
      default -> "?";
    };
  }

  /** The user-facing message of a failed call. */
  static String message(StatusRuntimeException e) {
    if (e.getStatus().getCause() instanceof TlsDialer.Failed f && f.wrongServer) {
      return f.getMessage();
    }
    if (e.getStatus().getCode() == io.grpc.Status.Code.UNAVAILABLE
        && e.getStatus().getCause() != null) {
      return "cannot reach the coordinator ("
          + e.getStatus().getCause().getMessage()
          + "); is it running? (`cohort cluster up` starts a local one; without a cluster or "
          + "--coordinator, cohort runs jobs on this machine)";
    }
    return GrpcErrors.fromStatus(e, "coordinator").getMessage();
  }

  @Override
  public void close() {
    if (embedded != null) {
      embedded.close();
    }
    if (remote != null) {
      remote.shutdownNow();
    }
  }
}
