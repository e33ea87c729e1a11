package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.cohort.proto.v1.JobNetworkPlan;
import io.cohort.proto.v1.VhostRecord;
import io.cohort.proto.v1.VhostState;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Queries observe; ending a vhost is the one step that writes and cleans up. */
class VhostsTest {
  @TempDir Path home;
  private final List<String> removed = new ArrayList<>();
  private VhostRecords records;
  private Vhosts vhosts;
  private Path recordFile;

  @BeforeEach
  void setUp() throws Exception {
    AgentConfig config =
        AgentConfig.defaults("n1", home, home.resolve("native"), "criu").withVhostNetworking(true);
    records = new VhostRecords(config.vhostsDir(), "n1");
    VhostNetwork network =
        new VhostNetwork() {
          @Override
          public void attach(long pid, String vhostId, String address, JobNetworkPlan plan) {}

          @Override
          public void reattach(long pid, String vhostId, String address, JobNetworkPlan plan) {}

          @Override
          public void removeJob(JobNetworkPlan plan) {}

          @Override
          public void removeStale(String vhostId) {
            removed.add(vhostId);
          }
        };
    vhosts =
        new Vhosts(config, records, null, network, Path.of("init"), Path.of("rsh"), true, r -> {});
    Process done = new ProcessBuilder("true").start();
    done.waitFor();
    Path dir = Files.createDirectories(records.vhostDir("3-0"));
    Files.writeString(dir.resolve("output.log"), "out\n");
    Files.writeString(dir.resolve("status"), "exited 7\n");
    records.save(
        VhostRecord.newBuilder()
            .setVhostId("3-0")
            .setJobId("3")
            .setPid(done.pid())
            .setPidStartTicks(1)
            .setAddress("198.19.3.10")
            .setLogPath(dir.resolve("output.log").toString())
            .setStatusPath(dir.resolve("status").toString())
            .setState(VhostState.VHOST_STATE_RUNNING)
            .build());
    recordFile = dir.resolve("record.json");
  }

  @Test
  void getObservesAnEndedVhostWithoutWritingOrTouchingTheNetwork() throws Exception {
    byte[] before = Files.readAllBytes(recordFile);
    var got = vhosts.get("3-0");
    assertEquals(VhostState.VHOST_STATE_EXITED, got.getState());
    assertEquals(7, got.getExitCode());
    assertEquals(List.of(), removed, "a query must not remove links");
    assertEquals(new String(before), Files.readString(recordFile), "a query must not write");
  }

  @Test
  void killRecordsTheEndAndRemovesTheLinkIdempotently() {
    assertEquals(VhostState.VHOST_STATE_EXITED, vhosts.kill("3-0"));
    assertEquals(VhostState.VHOST_STATE_EXITED, records.load("3-0").getState());
    assertEquals(7, records.load("3-0").getExitCode());
    assertEquals(List.of("3-0"), removed);
    assertEquals(VhostState.VHOST_STATE_EXITED, vhosts.kill("3-0"));
    assertEquals(List.of("3-0", "3-0"), removed);
  }
}
