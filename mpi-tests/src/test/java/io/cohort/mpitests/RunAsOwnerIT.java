package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import io.cohort.mpitests.CohortHarness.Result;
import io.cohort.mpitests.UnixAccounts.Account;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * A real unprivileged account runs a C MPI job across two nodes of the emulated cluster through the
 * real CLI, checkpoints it and restarts it on two other nodes: every process of the job, before and
 * after, runs with exactly the account's uid, gid and groups and no capability (read from /proc);
 * the output equals an uninterrupted run; the job's log is the owner's alone and its images are
 * root's alone.
 */
class RunAsOwnerIT {
  private static final String[] RING = CohortHarness.cRing(4, 900, 20);

  @Test
  void aUsersJobRunsAsTheUserBeforeAndAfterARestartOnOtherNodes() throws Exception {
    String expected = ReferenceRuns.reference(RING);
    try (UnixAccounts accounts = new UnixAccounts();
        CohortHarness cohort = new CohortHarness("run-as-owner")) {
      Account alice = accounts.create("o", "/bin/bash");
      Path cli = accounts.cli();
      List<String> command = new ArrayList<>(List.of(RING));
      int ring = command.indexOf(CohortHarness.RING.toString());
      command.set(ring, accounts.open(CohortHarness.RING, "mpi/ring").toString());
      try {
        cohort.clusterUp(4, "cohortro", "198.18.88");
        List<String> run =
            new ArrayList<>(List.of("run", "--detach", "--json", "--nodes", "n1,n2", "--"));
        run.addAll(command);
        String job =
            UnixAccounts.cohortAs(alice, cli, cohort.home, run.toArray(String[]::new))
                .ok()
                .json()
                .get("job")
                .getAsString();
        CohortHarness.awaitFile(cohort.clusterLog("n1", job), "iter 40 ", Duration.ofSeconds(90));
        assertEquals(List.of("n1", "n2"), nodes(cohort, job));
        assertRunsAs(alice, cohort, job, "before the checkpoint");

        Path log = cohort.clusterLog("n1", job);
        assertEquals(alice.name(), Files.getOwner(log, LinkOption.NOFOLLOW_LINKS).getName());
        assertEquals(
            "rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(log)));

        String ckpt =
            UnixAccounts.cohortAs(alice, cli, cohort.home, "checkpoint", job, "--stop", "--json")
                .ok()
                .json()
                .get("checkpoint")
                .getAsString();
        Path images = cohort.home.resolve("cluster/nodes/n1/images/" + ckpt + "/" + job + "-0");
        assertEquals("root", Files.getOwner(images).getName());
        assertEquals(
            "rwx------", PosixFilePermissions.toString(Files.getPosixFilePermissions(images)));
        assertNotEquals(
            0,
            UnixAccounts.as(alice, List.of("ls", images.toString())).rc(),
            "the owner cannot read the images (they hold the job's memory as root keeps it)");

        UnixAccounts.cohortAs(
                alice, cli, cohort.home, "restart", ckpt, "--nodes", "n3,n4", "--detach")
            .ok();
        assertEquals(List.of("n3", "n4"), nodes(cohort, job));
        assertRunsAs(alice, cohort, job, "after the restart on n3, n4");

        Result waited = UnixAccounts.cohortAs(alice, cli, cohort.home, "wait", job);
        assertEquals(0, waited.rc(), waited.err());
        ReferenceRuns.assertSameOutput(
            expected,
            UnixAccounts.cohortAs(alice, cli, cohort.home, "logs", "--stdout", job).ok().out(),
            "alice's job restarted on n3, n4");
      } finally {
        cohort.closeCluster();
      }
    }
  }

  private static List<String> nodes(CohortHarness cohort, String job) {
    List<String> out = new ArrayList<>();
    for (JsonElement v : cohort.job(job).getAsJsonArray("vhosts")) {
      out.add(v.getAsJsonObject().get("node").getAsString());
    }
    return out;
  }

  /**
   * Every process under each vhost's init (Cohort's own, which starts the job) has all four uids
   * and gids the account's, its groups, and empty capability sets; the ranks are among them.
   */
  private static void assertRunsAs(Account who, CohortHarness cohort, String job, String when)
      throws Exception {
    String ids = who.uid() + "\t" + who.uid() + "\t" + who.uid() + "\t" + who.uid();
    String gids = who.gid() + "\t" + who.gid() + "\t" + who.gid() + "\t" + who.gid();
    int ranks = 0;
    int checked = 0;
    List<JsonElement> vhosts = new ArrayList<>();
    cohort.job(job).getAsJsonArray("vhosts").forEach(vhosts::add);
    for (int i = 0; i < vhosts.size(); i++) {
      JsonObject v = vhosts.get(i).getAsJsonObject();
      long init = cohort.vhostInit(v.get("node").getAsString(), job + "-" + i);
      List<Long> tree = ProcTasks.tree(init);
      for (long pid : tree.subList(1, tree.size())) {
        String status = ProcTasks.status(pid);
        if (status.isEmpty()) {
          continue; // ended meanwhile
        }
        String what = when + ": process " + pid + " (" + field(status, "Name") + ") of " + job;
        assertEquals(ids, field(status, "Uid"), what + " uids");
        assertEquals(gids, field(status, "Gid"), what + " gids");
        assertEquals(String.valueOf(who.gid()), field(status, "Groups"), what + " groups");
        for (String cap : List.of("CapInh", "CapPrm", "CapEff", "CapAmb")) {
          assertEquals(0L, Long.parseLong(field(status, cap), 16), what + " " + cap);
        }
        checked++;
        ranks += field(status, "Name").equals("ring") ? 1 : 0;
      }
    }
    assertEquals(4, ranks, when + ": the four ranks, among " + checked + " processes checked");
  }

  private static String field(String status, String name) {
    for (String line : status.split("\n")) {
      if (line.startsWith(name + ":")) {
        return line.substring(name.length() + 1).strip();
      }
    }
    throw new AssertionError("no " + name + " in /proc status: " + status);
  }
}
