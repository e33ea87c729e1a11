package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.common.ProtoJson;
import io.cohort.proto.v1.AgentGrpc;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import io.cohort.proto.v1.JobState;
import io.cohort.proto.v1.Owner;
import io.cohort.proto.v1.RestoreVhostRequest;
import io.cohort.proto.v1.RestoreVhostResponse;
import io.cohort.proto.v1.VhostPlacement;
import io.grpc.stub.StreamObserver;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Clock;
import java.util.List;
import java.util.Map;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Checkpoint records edited on disk, as someone who can write the catalog but has not the cluster's
 * checkpoint key would: a restart refuses them before any agent is asked anything, and the job
 * stays as it was. A record the coordinator wrote itself restarts (its agent is asked to restore).
 */
class SignedRecordsTest {
  private static final Owner ALICE =
      Owner.newBuilder().setUid(1001).setGid(1001).addGroups(1001).setUser("alice").build();

  @TempDir Path dir;

  private final InProcessAgents agents = new InProcessAgents();
  private final AtomicInteger restores = new AtomicInteger();
  private Catalog catalog;
  private Coordinator coordinator;

  @BeforeEach
  void setUp() throws Exception {
    catalog = new Catalog(dir, TestKey.KEY);
    for (String job : List.of("12", "13")) {
      catalog.saveJob(
          JobRecord.newBuilder()
              .setNextEpoch(2)
              .setInfo(
                  JobInfo.newBuilder()
                      .setJobId(job)
                      .setState(JobState.JOB_STATE_STOPPED)
                      .setIncarnation(1)
                      .setOwner(ALICE))
              .build());
      catalog.commitCheckpoint(record(job, 1));
    }
    AgentGrpc.AgentImplBase n1 =
        new AgentGrpc.AgentImplBase() {
          @Override
          public void restoreVhost(
              RestoreVhostRequest req, StreamObserver<RestoreVhostResponse> out) {
            restores.incrementAndGet();
            out.onError(io.grpc.Status.UNAVAILABLE.withDescription("test agent").asException());
          }
        };
    coordinator =
        new Coordinator(
            catalog,
            agents.serve(Map.of("n1", n1)),
            BarrierConfig.defaults(),
            NodeLossConfig.defaults(),
            Clock.systemUTC());
  }

  @AfterEach
  void tearDown() {
    coordinator.close();
    agents.close();
  }

  /** A record as the barrier writes it, of a job of alice's with one vhost on n1. */
  private static CheckpointInfo record(String job, long epoch) {
    JobInfo info =
        JobInfo.newBuilder()
            .setJobId(job)
            .setOwner(ALICE)
            .addVhosts(VhostPlacement.newBuilder().setVhostId(job + "-0").setNode("n1"))
            .build();
    return CheckpointRecords.of(info, epoch, true, 100, Map.of(), 1).build();
  }

  private Path file(String ckpt) {
    return dir.resolve("checkpoints").resolve(ckpt + ".json");
  }

  /** Edits a record's file as an attacker would: its fields, keeping its MAC. */
  private void edit(String ckpt, UnaryOperator<CheckpointInfo> change) {
    CheckpointInfo now = ProtoJson.read(file(ckpt), CheckpointInfo.newBuilder()).build();
    ProtoJson.write(file(ckpt), change.apply(now));
  }

  private CohortException restartRefused(String target, CohortException.Kind kind) {
    JobRecord before = catalog.job("12");
    CohortException e =
        assertThrows(CohortException.class, () -> coordinator.restart(target, false, List.of()));
    assertEquals(kind, e.kind(), e.getMessage());
    assertEquals(0, restores.get(), "no agent was asked to restore");
    assertEquals(before, catalog.job("12"), "the job is as it was");
    return e;
  }

  @Test
  void aRecordTheCoordinatorWroteIsSignedAndRestarts() {
    assertTrue(TestKey.KEY.signed(catalog.checkpoint("12.1").orElseThrow()));
    assertEquals(ALICE, catalog.checkpoint("12.1").orElseThrow().getOwner());
    assertThrows(CohortException.class, () -> coordinator.restart("12", false, List.of()));
    assertEquals(1, restores.get(), "past the checks, its agent was asked to restore it");
  }

  @Test
  void aRecordWithANodeOrAManifestDigestEditedIsRefused() {
    edit("12.1", c -> c.toBuilder().setVhosts(0, c.getVhosts(0).toBuilder().setNode("n2")).build());
    String why = restartRefused("12.1", CohortException.Kind.DATA_LOSS).getMessage();
    assertTrue(
        why.contains(
            "checkpoint 12.1 of job 12: its record is not signed by this cluster's checkpoint key "
                + "(edited, or from another cluster); refusing to restart from it"),
        why);
    edit(
        "12.1",
        c ->
            record("12", 1).toBuilder()
                .putManifestSha256("12-0", "0".repeat(64))
                .setHmacSha256(c.getHmacSha256())
                .build());
    restartRefused("12", CohortException.Kind.DATA_LOSS);
  }

  @Test
  void aRecordWithItsOwnerEditedIsRefusedAndSoIsAJobRecordWithItsOwnerEdited() {
    edit("12.1", c -> c.toBuilder().setOwner(Owner.getDefaultInstance()).build());
    restartRefused("12.1", CohortException.Kind.DATA_LOSS);
    catalog.commitCheckpoint(record("12", 1)); // the genuine record back
    JobRecord job = catalog.job("12");
    catalog.saveJob(
        job.toBuilder()
            .setInfo(job.getInfo().toBuilder().setOwner(Owner.getDefaultInstance()))
            .build());
    String why = restartRefused("12.1", CohortException.Kind.PERMISSION_DENIED).getMessage();
    assertTrue(
        why.contains("checkpoint 12.1 was taken of a job of alice, but job 12 belongs to root"),
        why);
  }

  @Test
  void aSignedRecordOfAnotherJobOrCheckpointMovedIntoThisJobIsRefused() throws Exception {
    Files.copy(file("13.1"), file("12.2"));
    String why = restartRefused("12.2", CohortException.Kind.DATA_LOSS).getMessage();
    assertTrue(why.contains("the record of checkpoint 12.2 is that of checkpoint 13.1"), why);
    // The latest of job 12 by its name: the record inside says it is job 13's.
    Files.delete(file("12.1"));
    Files.move(file("12.2"), file("12.1"));
    why = restartRefused("12", CohortException.Kind.DATA_LOSS).getMessage();
    assertTrue(why.contains("a record moved there from another job"), why);
  }

  @Test
  void aRecordOfAnotherClusterIsRefused() {
    ProtoJson.write(file("12.1"), CheckpointKey.random().sign(record("12", 1)));
    restartRefused("12", CohortException.Kind.DATA_LOSS);
  }

  @Test
  void anEditedRecordIsNeverSignedAnewByAChangeOfItsCopies() throws Exception {
    edit("12.1", c -> c.toBuilder().setOwner(Owner.getDefaultInstance()).build());
    byte[] edited = Files.readAllBytes(file("12.1"));
    CohortException e =
        assertThrows(
            CohortException.class,
            () -> catalog.updateCheckpoint("12.1", c -> c.toBuilder().setImageBytes(5).build()));
    assertEquals(CohortException.Kind.DATA_LOSS, e.kind());
    assertEquals(new String(edited), Files.readString(file("12.1")), "left as it is");
    assertFalse(TestKey.KEY.signed(catalog.checkpoint("12.1").orElseThrow()));
    // A genuine record's change is signed.
    catalog.updateCheckpoint("13.1", c -> c.toBuilder().setImageBytes(5).build());
    CheckpointInfo changed = catalog.checkpoint("13.1").orElseThrow();
    assertEquals(5, changed.getImageBytes());
    assertTrue(TestKey.KEY.signed(changed));
  }
}
