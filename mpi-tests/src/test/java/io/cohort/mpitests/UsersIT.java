package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.cohort.mpitests.CohortHarness.Result;
import io.cohort.mpitests.UnixAccounts.Account;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Two real unprivileged accounts on the emulated cluster, each running the real `cohort` CLI as
 * itself (the coordinator names the caller from its Unix socket's peer credentials): one user's job
 * is theirs alone; the other user can neither list it nor checkpoint, kill, read, remove, restart,
 * watch or wait for it, each refused with PERMISSION_DENIED saying whose it is, and nothing
 * changes; root sees and may touch both. Without a daemon a user is told to start one. (Users on
 * the coordinator's TCP port, authenticated with MUNGE: MungeIT.)
 */
class UsersIT {
  private static final String TICKER =
      "i=0; while [ $i -lt 3000 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done";

  private static CohortHarness cohort;
  private static UnixAccounts accounts;
  private static Account alice;
  private static Account bob;
  private static Path cli;

  @BeforeAll
  static void up() throws Exception {
    accounts = new UnixAccounts();
    cohort = new CohortHarness("users");
    try {
      alice = accounts.create("a");
      bob = accounts.create("b");
      cli = accounts.cli();
      cohort.clusterUp(2, "cohortus", "198.18.87");
    } catch (Exception | AssertionError e) {
      down();
      throw e;
    }
  }

  @AfterAll
  static void down() throws Exception {
    UnixAccounts.closeAll(cohort, accounts);
  }

  private static Result as(Account who, String... args) {
    return UnixAccounts.cohortAs(who, cli, cohort.home, args);
  }

  private static List<String> jobsSeenBy(Account who) {
    Result r = who == null ? cohort.cohort("ps", "--json").ok() : as(who, "ps", "--json").ok();
    List<String> ids = new ArrayList<>();
    for (JsonElement e : JsonParser.parseString(r.out()).getAsJsonArray()) {
      ids.add(e.getAsJsonObject().get("job_id").getAsString());
    }
    return ids;
  }

  private static String runAs(Account who) {
    return as(who, "run", "--detach", "--json", "--", "sh", "-c", TICKER)
        .ok()
        .json()
        .get("job")
        .getAsString();
  }

  private static void assertDenied(Result r, String what, String job, Account owner) {
    assertNotEquals(0, r.rc(), what + " of another user's job succeeded: " + r.out());
    assertTrue(
        r.err().contains("belongs to " + owner.name() + ", not to " + bob.name()),
        what + " should say whose the job is; it said: " + r.err());
  }

  @Test
  void onlyTheOwnerOrRootTouchesAJob() throws Exception {
    String a = runAs(alice);
    String b = runAs(bob);
    JsonObject info = cohort.job(a);
    JsonObject owner = info.getAsJsonObject("owner");
    assertEquals(alice.uid(), owner.get("uid").getAsInt(), info.toString());
    assertEquals(alice.name(), owner.get("user").getAsString());

    assertEquals(List.of(a), jobsSeenBy(alice));
    assertEquals(List.of(b), jobsSeenBy(bob));
    assertTrue(jobsSeenBy(null).containsAll(List.of(a, b)), "root sees every job");

    long deadline = System.nanoTime() + Duration.ofMinutes(1).toNanos();
    while (!as(alice, "logs", a).ok().out().contains("tick 3")) {
      assertTrue(System.nanoTime() < deadline, "alice's job printed nothing in a minute");
      Thread.sleep(500);
    }
    String ckpt = as(alice, "checkpoint", a).ok().out().strip();
    assertEquals(a + ".1", ckpt);
    assertTrue(as(alice, "logs", a).ok().out().contains("tick 3"));

    String[][] attempts = {
      {"checkpoint", a},
      {"checkpoint", "--stop", a},
      {"kill", a},
      {"kill", "--signal", "TERM", a},
      {"logs", a},
      {"rm", ckpt},
      {"restart", "--replace", a},
      {"restart", "--replace", ckpt},
      {"watch", a},
      {"wait", a},
      {"checkpoints", a},
    };
    for (String[] attempt : attempts) {
      assertDenied(as(bob, attempt), String.join(" ", attempt), a, alice);
    }
    assertEquals(List.of(b), jobsSeenBy(bob));
    JsonElement bobsCheckpoints =
        JsonParser.parseString(as(bob, "checkpoints", "--json").ok().out());
    assertEquals(0, bobsCheckpoints.getAsJsonArray().size(), bobsCheckpoints.toString());

    // Nothing changed: alice's job still runs its first incarnation, its checkpoint is there.
    JsonObject after = cohort.job(a);
    assertEquals("JOB_STATE_RUNNING", after.get("state").getAsString(), after.toString());
    assertEquals(info.get("incarnation").getAsLong(), after.get("incarnation").getAsLong());
    assertEquals(1, cohort.checkpoints(a).size());

    // Root may touch both.
    assertEquals(0, cohort.cohort("kill", a).rc());
    assertEquals(0, cohort.cohort("kill", b).rc());
  }

  @Test
  void withoutADaemonAUserIsToldToStartOne() throws Exception {
    Path empty = Files.createTempDirectory(CohortHarness.base(), "users-empty-");
    Files.setPosixFilePermissions(empty, PosixFilePermissions.fromString("rwxr-xr-x"));
    try {
      Result r = UnixAccounts.cohortAs(bob, cli, empty, "ps");
      assertNotEquals(0, r.rc());
      assertTrue(r.err().contains("only root may run jobs without one"), r.err());
    } finally {
      Files.delete(empty);
    }
  }
}
