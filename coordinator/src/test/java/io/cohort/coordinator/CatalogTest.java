package io.cohort.coordinator;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import io.cohort.common.CohortException;
import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobRecord;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CatalogTest {
  @TempDir Path dir;

  @Test
  void jobIdsAreNeverReusedAcrossInstances() {
    assertEquals("1", new Catalog(dir, TestKey.KEY).allocateJobId());
    assertEquals("2", new Catalog(dir, TestKey.KEY).allocateJobId());
    assertEquals("3", new Catalog(dir, TestKey.KEY).allocateJobId());
  }

  @Test
  void checkpointsAreListedInOrderAndPerJob() {
    Catalog c = new Catalog(dir, TestKey.KEY);
    for (String id : new String[] {"2.10", "2.9", "10.1", "3.1"}) {
      String[] p = id.split("\\.");
      c.commitCheckpoint(
          CheckpointInfo.newBuilder()
              .setCheckpointId(id)
              .setJobId(p[0])
              .setEpoch(Long.parseLong(p[1]))
              .build());
    }
    assertEquals(
        java.util.List.of("2.9", "2.10", "3.1", "10.1"),
        c.checkpoints("").stream().map(CheckpointInfo::getCheckpointId).toList());
    assertEquals(
        java.util.List.of("2.9", "2.10"),
        c.checkpoints("2").stream().map(CheckpointInfo::getCheckpointId).toList());
    c.deleteCheckpoint("2.9");
    assertFalse(c.checkpoint("2.9").isPresent());
  }

  @Test
  void unknownAndDamagedRecordsGiveClearErrors() throws Exception {
    Catalog c = new Catalog(dir, TestKey.KEY);
    CohortException e = assertThrows(CohortException.class, () -> c.job("5"));
    assertEquals(CohortException.Kind.NOT_FOUND, e.kind());
    c.saveJob(JobRecord.newBuilder().setInfo(JobInfo.newBuilder().setJobId("5")).build());
    Files.writeString(dir.resolve("jobs/5.json"), "{not json");
    e = assertThrows(CohortException.class, () -> c.job("5"));
    assertEquals(CohortException.Kind.DATA_LOSS, e.kind());
    e = assertThrows(CohortException.class, () -> c.job("../etc"));
    assertEquals(CohortException.Kind.INVALID_ARGUMENT, e.kind());
  }
}
