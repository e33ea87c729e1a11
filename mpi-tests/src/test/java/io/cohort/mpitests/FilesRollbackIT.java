package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonObject;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestInfo;

/**
 * Files the job writes roll back with the checkpoint: a real MPI job that writes an output file
 * (fopen "w"), an append-only log and a data file updated in place with pwrite is checkpointed five
 * times, runs on, is killed and restarts from the third checkpoint; every file must end
 * byte-identical to an uninterrupted run's.
 */
class FilesRollbackIT {
  static final Path WRITER = CohortHarness.REPO.resolve("mpi-tests/target/mpi/writer");
  static final List<String> FILES =
      List.of("out-0.txt", "out-1.txt", "log-0.txt", "log-1.txt", "data-0.bin", "data-1.bin");

  private CohortHarness cohort;

  @BeforeEach
  void setUp(TestInfo info) throws Exception {
    cohort = new CohortHarness(info.getTestMethod().orElseThrow().getName());
  }

  @AfterEach
  void tearDown() throws Exception {
    cohort.close();
  }

  static String[] writer(Path dir, int steps, int delayMs) {
    return new String[] {
      "mpirun",
      "-np",
      "2",
      WRITER.toString(),
      dir.toString(),
      Integer.toString(steps),
      Integer.toString(delayMs)
    };
  }

  /** The files an uninterrupted run of the same program leaves. */
  static Path reference(Path home, int steps) throws Exception {
    Path ref = Files.createDirectories(home.resolve("reference"));
    ReferenceRuns.reference(writer(ref, steps, 0));
    return ref;
  }

  static void assertSameFiles(Path expected, Path actual) throws IOException {
    for (String f : FILES) {
      assertArrayEquals(
          Files.readAllBytes(expected.resolve(f)),
          Files.readAllBytes(actual.resolve(f)),
          f + " differs from an uninterrupted run's");
    }
  }

  /** Files kept aside by a rollback (the bytes cut off or overwritten), never destroyed. */
  static List<Path> keptAside(Path dir) throws IOException {
    try (Stream<Path> s = Files.list(dir)) {
      return new ArrayList<>(
          s.filter(p -> p.getFileName().toString().contains(".after-")).toList());
    }
  }

  @Test
  void fiveCheckpointsThenKilledAndRestartedFromTheThird() throws Exception {
    int steps = 600; // 24 s: still running through five checkpoints on a busy machine
    Path ref = reference(cohort.home, steps);
    Path dir = Files.createDirectories(cohort.home.resolve("run"));
    String job = cohort.runDetached(writer(dir, steps, 40));
    List<String> ckpts = new ArrayList<>();
    for (int at = 10; at <= 50; at += 10) {
      cohort.awaitOutput(job, "step " + at + "\n", Duration.ofSeconds(60));
      JsonObject c = cohort.checkpoint(job, false);
      assertEquals(6, c.get("tracked_files").getAsInt(), "every rank's three files: " + c);
      ckpts.add(c.get("checkpoint").getAsString());
    }
    cohort.awaitOutput(job, "step 80\n", Duration.ofSeconds(60));
    cohort.cohort("kill", job).ok();
    String third = ckpts.get(2);
    cohort.cohort("restart", third, "--detach", "--json").ok();
    assertEquals(0, cohort.await(job));
    assertSameFiles(ref, dir);
    assertTrue(
        keptAside(dir).size() >= FILES.size(),
        "what each file held after the checkpoint is kept beside it: " + keptAside(dir));
  }
}
