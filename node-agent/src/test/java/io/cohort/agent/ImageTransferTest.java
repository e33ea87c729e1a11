package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.ExportImageRequest;
import io.cohort.proto.v1.ImageChunk;
import io.cohort.proto.v1.ImageManifest;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.JobFile;
import io.cohort.proto.v1.RestoreVhostRequest;
import io.grpc.Server;
import io.grpc.inprocess.InProcessChannelBuilder;
import io.grpc.inprocess.InProcessServerBuilder;
import io.grpc.stub.StreamObserver;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Images copied between nodes keep the job's logs inside the copy; only a restore from it puts them
 * at their paths. The job's vhost dir is one path that every node sees, as on the emulated cluster,
 * whose nodes share one file system (and as on any node where the job runs again at the same path).
 * CRIU is faked: these tests are about the job's logs.
 */
class ImageTransferTest {
  private static final String VHOST = "7-0";

  @TempDir Path home;
  private final List<Server> servers = new ArrayList<>();
  private final Map<String, LocalImageStore> stores = new HashMap<>();
  private final Map<String, String> manifestSha = new HashMap<>();

  /** Run by n1's export once it has read and sent the whole image, before its stream ends. */
  private volatile Runnable afterExport = () -> {};

  private volatile boolean criuFails;
  private Path jobDir;
  private Path out;
  private Path err;
  private Path order;

  @BeforeEach
  void setUp() throws IOException {
    jobDir = Files.createDirectories(home.resolve("n1/vhosts/" + VHOST));
    out = jobDir.resolve(JobFiles.STDOUT);
    err = jobDir.resolve(JobFiles.STDERR);
    order = jobDir.resolve(JobFiles.ORDER);
    for (Path p : List.of(out, err, order)) {
      Files.write(p, new byte[0]);
    }
  }

  @AfterEach
  void tearDown() throws InterruptedException {
    for (Server s : servers) {
      s.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }

  /**
   * The interleaving of a flaky NodeLossIT run: n3 copies checkpoint 7.2 from n1 (n1's export reads
   * the job's logs as they stand then); meanwhile the job restarts on n1 from the older 7.1, which
   * cuts the logs back; the copy lands before the restored job has written again. It must leave the
   * logs alone: had it put 7.2's logs back under the restored job, the job would write on after
   * them and everything printed between 7.1 and 7.2 would be in its output twice.
   */
  @Test
  void aCopyLandingAfterTheJobRestartedFromAnOlderCheckpointLeavesItsLogsAlone() throws Exception {
    jobPrints("iter 1\n");
    checkpoint("n1", "7.1");
    jobPrints("iter 2\n");
    checkpoint("n1", "7.2");
    jobPrints("iter 3\n");
    afterExport = () -> restore("n1", "7.1");

    importFrom("n1", "n3", "7.2");
    jobPrints("iter 2\n"); // the restored job prints on from 7.1

    assertEquals(
        "iter 1\niter 2\n",
        Files.readString(out),
        "the job's output after its restart from 7.1: a copy of 7.2 that landed after the restore "
            + "must not put 7.2's output back under it");
    assertEquals(8, Files.size(order), "two chunks recorded since the start");
    Path copy = stores.get("n3").committedDir("7.2", VHOST);
    assertEquals("iter 1\niter 2\n", Files.readString(copy.resolve("job/output.log")));
    assertEquals(8, Files.size(copy.resolve("job/output.order")));
  }

  /**
   * A restore from a copy puts the logs it holds at their paths, in place of what is there (another
   * incarnation's, kept beside); a restore that fails puts that back. A copy of the copy is taken
   * from the copy, not from the paths.
   */
  @Test
  void aRestoreFromACopyPutsItsLogsInPlaceAndKeepsWhatWasThere() throws Exception {
    jobPrints("iter 1\n");
    checkpoint("n1", "7.1");
    jobPrints("iter 2\n");
    importFrom("n1", "n3", "7.1");
    jobPrints("iter 3\n");
    String before = Files.readString(out);

    criuFails = true;
    CohortException failed = assertThrows(CohortException.class, () -> restore("n3", "7.1"));
    assertTrue(failed.getMessage().contains("The output log is as it was"), failed.getMessage());
    assertEquals(before, Files.readString(out));
    assertEquals(List.of(), keptBeside(), "a failed restore leaves nothing beside the logs");

    criuFails = false;
    restore("n3", "7.1");
    assertEquals("iter 1\n", Files.readString(out));
    assertEquals(4, Files.size(order));
    List<Path> kept = keptBeside();
    assertEquals(3, kept.size(), kept.toString());
    Path keptOut =
        kept.stream()
            .filter(p -> p.getFileName().toString().startsWith("output.log.after-7.1-"))
            .findFirst()
            .orElseThrow();
    assertEquals(before, Files.readString(keptOut), "the log that was there, whole");

    jobPrints("iter 9\n"); // at the paths now: not the copy's business
    importFrom("n3", "n2", "7.1");
    assertEquals(
        "iter 1\n",
        Files.readString(stores.get("n2").committedDir("7.1", VHOST).resolve("job/output.log")));
  }

  /**
   * The job restarted from an older checkpoint has cut its logs back below a newer checkpoint's
   * sizes: that checkpoint's output is gone, and a copy of it is refused rather than kept short.
   */
  @Test
  void aCopyOfACheckpointWhoseOutputWasCutBackIsRefused() throws Exception {
    jobPrints("iter 1\n");
    checkpoint("n1", "7.1");
    jobPrints("iter 2\n");
    checkpoint("n1", "7.2");
    restore("n1", "7.1");

    CohortException e = assertThrows(CohortException.class, () -> importFrom("n1", "n3", "7.2"));
    assertEquals(CohortException.Kind.FAILED_PRECONDITION, e.kind(), e.getMessage());
    assertTrue(e.getMessage().contains("output.log of checkpoint 7.2"), e.getMessage());
    assertTrue(e.getMessage().contains("cut back by a restart"), e.getMessage());
    assertFalse(Files.exists(stores.get("n3").committedDir("7.2", VHOST)));
  }

  // ------------------------------------------------------------------ the job and its nodes

  /** What the vhost's init does with a chunk of stdout: the bytes, then their record. */
  private void jobPrints(String text) throws IOException {
    byte[] b = text.getBytes(java.nio.charset.StandardCharsets.UTF_8);
    Files.write(out, b, StandardOpenOption.APPEND);
    byte[] rec = {(byte) b.length, 0, 0, 0};
    Files.write(order, rec, StandardOpenOption.APPEND);
  }

  /** A committed image of the job's vhost on {@code node}, with the logs' sizes now. */
  private void checkpoint(String node, String ckpt) throws IOException {
    ImageStore store = store(node);
    Path pending = store.createPending(ckpt, VHOST);
    Files.writeString(pending.resolve("criu/core-1.img"), "core of " + ckpt);
    ImageManifest.Builder m =
        ImageManifest.newBuilder()
            .setCheckpointId(ckpt)
            .setJobId("7")
            .setVhostId(VHOST)
            .setNode(node)
            .setOutputLogPath(out.toString())
            .setOutputLogSize(Files.size(out))
            .setStatusPath(jobDir.resolve("status").toString());
    for (Path log : List.of(err, order)) {
      m.addJobFiles(
          JobFile.newBuilder()
              .setName(log.getFileName().toString())
              .setPath(log.toString())
              .setSize(Files.size(log)));
    }
    manifestSha.put(ckpt, store.seal(pending, m).getValue());
    store.publish(ckpt, VHOST);
  }

  private LocalImageStore store(String node) {
    return stores.computeIfAbsent(
        node, n -> new LocalImageStore(home.resolve(n + "/images"), ".pending", TestKey.KEY));
  }

  private AgentConfig config(String node) {
    return AgentConfig.defaults(node, home.resolve(node), home.resolve("native"), "criu")
        .withCheckpointKey(TestKey.KEY);
  }

  /** {@code to} fetches an image from {@code from}'s agent, as a partner copy does. */
  private void importFrom(String from, String to, String ckpt) throws IOException {
    String address = serve(from);
    ImageTransfer transfer =
        new ImageTransfer(
            config(to),
            store(to),
            a -> InProcessChannelBuilder.forName(a).directExecutor().build(),
            home.resolve("init"));
    transfer.importImage(
        ImportImageRequest.newBuilder()
            .setCheckpointId(ckpt)
            .setVhostId(VHOST)
            .setSourceAddress(address)
            .setManifestSha256(manifestSha.get(ckpt))
            .build());
  }

  /** Serves a node's exports over in-process gRPC; n1's run {@link #afterExport} at the end. */
  private String serve(String node) throws IOException {
    ImageTransfer transfer = new ImageTransfer(config(node), store(node), null, home.resolve("i"));
    String name = "agent-" + node + "-" + System.nanoTime();
    servers.add(
        InProcessServerBuilder.forName(name)
            .addService(
                new AgentGrpc.AgentImplBase() {
                  @Override
                  public void exportImage(ExportImageRequest req, StreamObserver<ImageChunk> sink) {
                    transfer.export(
                        req.getCheckpointId(), req.getVhostId(), sink::onNext, () -> false);
                    if (node.equals("n1")) {
                      afterExport.run();
                    }
                    sink.onCompleted();
                  }
                })
            .build()
            .start());
    return name;
  }

  /** The agent of {@code node} restores the job's vhost from {@code ckpt} (CRIU faked). */
  private void restore(String node, String ckpt) {
    VhostRecords records = new VhostRecords(home.resolve(node + "/vhosts"), node);
    FakeCriu criu;
    try {
      criu = new FakeCriu(Files.createDirectories(home.resolve(node + "-criu")));
      Path fail = criu.control.resolve("fail-restore");
      if (criuFails) {
        Files.writeString(fail, "");
      } else {
        Files.deleteIfExists(fail);
      }
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    RestoreHolds holds =
        new RestoreHolds(
            criu,
            NativeInstalls.actionScript(home.resolve(node)),
            ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow(),
            Duration.ofSeconds(30));
    Restorer restorer =
        new Restorer(
            node,
            records,
            store(node),
            holds,
            null, // the vhost has no address: its network is never touched
            new JobNetwork(node, records, null, null, null),
            new OutputLog(records, node));
    restorer.restore(
        RestoreVhostRequest.newBuilder()
            .setCheckpointId(ckpt)
            .setVhostId(VHOST)
            .setManifestSha256(manifestSha.get(ckpt))
            .build());
    holds.release(List.of(VHOST)); // the job released: the fake CRIU lets its "tasks" go
    // The restored vhost has ended (by the test's word): the next restore may run.
    records.save(
        records.load(VHOST).toBuilder()
            .setState(io.cohort.proto.v1.VhostState.VHOST_STATE_KILLED)
            .build());
  }

  private List<Path> keptBeside() throws IOException {
    try (Stream<Path> s = Files.list(jobDir)) {
      return s.filter(p -> p.getFileName().toString().contains(".after-")).sorted().toList();
    }
  }
}
