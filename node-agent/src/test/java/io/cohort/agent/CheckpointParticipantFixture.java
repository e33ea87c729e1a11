package io.cohort.agent;

import io.cohort.proto.v1.CheckpointDecision;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.io.TempDir;

/**
 * What the tests of {@link CheckpointParticipant} share: a fake CRIU that plays the action-script
 * protocol (real FIFOs, the real action script), a real image store in a temporary directory, one
 * running vhost {@value #VHOST} of job 7, and the requests of the barrier's phases for it.
 */
abstract class CheckpointParticipantFixture {
  static final String VHOST = "7-0";

  static final CheckpointDecision ABORT = CheckpointDecision.CHECKPOINT_DECISION_ABORT;
  static final CheckpointDecision COMMIT = CheckpointDecision.CHECKPOINT_DECISION_COMMIT_RESUME;
  static final CheckpointDecision COMMIT_STOP = CheckpointDecision.CHECKPOINT_DECISION_COMMIT_STOP;

  @TempDir Path home;
  private final List<Process> started = new ArrayList<>();
  FakeCriu criu;
  VhostRecords records;
  AgentConfig config;
  private Path script;

  /** The vhost's "init": only its liveness matters here. */
  ProcessIdentity init;

  /** The vhosts a --stop ended, as the participant reported them. */
  final List<VhostRecord> stopped = new ArrayList<>();

  @BeforeEach
  void setUp() throws Exception {
    criu = new FakeCriu(home);
    // A short CRIU timeout: a broken release shows as a failure, not as a hung build.
    AgentConfig d = AgentConfig.defaults("n1", home, home.resolve("native"), "criu");
    config =
        new AgentConfig(
            d.node(),
            d.home(),
            d.initBinary(),
            d.criuCommand(),
            d.launchTimeout(),
            Duration.ofSeconds(8),
            d.minFreeBytes(),
            false,
            null,
            null,
            TestKey.KEY);
    records = new VhostRecords(config.vhostsDir(), "n1");
    script = NativeInstalls.actionScript(home);
    init = sleeper();
    Path dir = Files.createDirectories(records.vhostDir(VHOST));
    Files.writeString(dir.resolve("output.log"), "hello\n");
    records.save(
        VhostRecord.newBuilder()
            .setVhostId(VHOST)
            .setJobId("7")
            .setHostname("h")
            .setPid(init.pid())
            .setPidStartTicks(init.startTicks())
            .setLogPath(dir.resolve("output.log").toString())
            .setStatusPath(dir.resolve("status").toString())
            .setState(VhostState.VHOST_STATE_RUNNING)
            .build());
  }

  @AfterEach
  void tearDown() throws Exception {
    criu.hold(false);
    for (Process p : started) {
      p.destroyForcibly();
      p.waitFor();
    }
  }

  /** A process of its own, ended after the test. */
  ProcessIdentity sleeper() throws IOException {
    Process p = new ProcessBuilder("sleep", "600").start();
    started.add(p);
    return ProcessIdentity.of(p.pid()).orElseThrow();
  }

  /** A participant over {@code store} and {@code cuts}, in the agent process {@code agent}. */
  CheckpointParticipant participant(ImageStore store, ChannelCuts cuts, ProcessIdentity agent) {
    return new CheckpointParticipant(
        config, records, store, criu, cuts, script, agent, () -> "fake", stopped::add);
  }

  /** The image store of {@link #config}, as a fresh agent opens it. */
  LocalImageStore store() {
    return new LocalImageStore(config.imagesDir(), config.pendingName(), TestKey.KEY);
  }

  /** A participant with no network cut, in this process as its agent. */
  CheckpointParticipant participant() {
    return participant(store(), ChannelCuts.NONE, thisProcess());
  }

  /** This test's own process, as the agent that a participant reports to CRIU's hook. */
  static ProcessIdentity thisProcess() {
    return ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow();
  }

  /**
   * Network cuts whose each cut does nothing but run {@code atLock} when CRIU has locked the
   * network and {@code atAbort} when the cut is aborted.
   */
  static ChannelCuts cuts(Runnable atLock, Runnable atAbort) {
    return new ChannelCuts() {
      @Override
      public Cut open(String ckpt, VhostRecord rec, long epoch, Set<String> local) {
        return new Cut() {
          @Override
          public void begin() {}

          @Override
          public void networkLocked(String vhost) {
            atLock.run();
          }

          @Override
          public List<byte[]> recordingFor(String address) {
            return List.of();
          }

          @Override
          public void released(String vhost, boolean stopped) {}

          @Override
          public void abort() {
            atAbort.run();
          }
        };
      }

      @Override
      public void forget(String ckpt) {}
    };
  }

  static DumpVhostRequest dump(long epoch, boolean stop) {
    return DumpVhostRequest.newBuilder()
        .setCheckpointId("7." + epoch)
        .setEpoch(epoch)
        .setVhostId(VHOST)
        .setStop(stop)
        .build();
  }

  static FinishCheckpointRequest finish(long epoch, CheckpointDecision d) {
    return FinishCheckpointRequest.newBuilder()
        .setCheckpointId("7." + epoch)
        .setEpoch(epoch)
        .setVhostId(VHOST)
        .setDecision(d)
        .build();
  }

  static ResumeVhostRequest resume(long epoch) {
    return ResumeVhostRequest.newBuilder().setCheckpointId("7." + epoch).setVhostId(VHOST).build();
  }

  static SealImageRequest seal(long epoch) {
    return SealImageRequest.newBuilder().setCheckpointId("7." + epoch).setVhostId(VHOST).build();
  }

  /** Whether any image of epoch {@code epoch} of the vhost is left, pending or committed. */
  boolean anyImage(long epoch) {
    LocalImageStore s = store();
    return Files.exists(s.pendingDir("7." + epoch, VHOST))
        || Files.exists(s.committedDir("7." + epoch, VHOST));
  }
}
