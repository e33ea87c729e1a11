package io.cohort.mpitests;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import io.cohort.mpitests.CohortHarness.Result;
import io.cohort.mpitests.UnixAccounts.Account;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobSpec;
import io.cohort.proto.v1.KillJobRequest;
import io.cohort.proto.v1.ListJobsRequest;
import io.cohort.proto.v1.RunRequest;
import io.grpc.ManagedChannel;
import io.grpc.Metadata;
import io.grpc.Status;
import io.grpc.StatusRuntimeException;
import io.grpc.netty.GrpcSslContexts;
import io.grpc.netty.NettyChannelBuilder;
import io.grpc.stub.MetadataUtils;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * The coordinator's TCP port, where users of other machines call it, on the emulated cluster with
 * this machine's real munged and a real unprivileged account: the account's own `cohort` CLI, over
 * TCP, is served as that user (its run is its own, its `ps` lists its jobs only, root's job is not
 * its to kill). A client of the test's own, speaking gRPC to the port directly, shows what the CLI
 * never sends: no credential, a forged one (garbage, or a valid one with a character changed), one
 * made for another call, and a replayed one (captured from `munge` and sent twice) are each refused
 * with UNAUTHENTICATED, and nothing changes.
 */
class MungeIT {
  private static final String SUBNET = "198.18.89";
  private static final String TCP = SUBNET + ".1:7070";
  private static final String TICKER =
      "i=0; while [ $i -lt 3000 ]; do echo tick $i; i=$((i+1)); sleep 0.2; done";
  private static final String KILL = CohortGrpc.getKillJobMethod().getFullMethodName();
  private static final String LIST = CohortGrpc.getListJobsMethod().getFullMethodName();
  private static final String RUN = CohortGrpc.getRunMethod().getFullMethodName();

  private static CohortHarness cohort;
  private static UnixAccounts accounts;
  private static Account alice;
  private static java.nio.file.Path cli;

  @BeforeAll
  static void up() throws Exception {
    accounts = new UnixAccounts();
    cohort = new CohortHarness("munge");
    try {
      alice = accounts.create("m");
      cli = accounts.cli();
      cohort.clusterUp(1, "cohortmu", SUBNET);
    } catch (Exception | AssertionError e) {
      down();
      throw e;
    }
  }

  @AfterAll
  static void down() throws Exception {
    UnixAccounts.closeAll(cohort, accounts);
  }

  /** `cohort ARGS --coordinator TCP` as alice: over TCP, as from another machine. */
  private static Result overTcp(String... args) {
    List<String> all = new ArrayList<>(List.of(args));
    all.add(all.contains("--") ? all.indexOf("--") : all.size(), "--coordinator");
    all.add(all.indexOf("--coordinator") + 1, TCP);
    return UnixAccounts.cohortAs(alice, cli, cohort.home, all.toArray(String[]::new));
  }

  private static String jobOf(Result run) {
    return run.ok().json().get("job").getAsString();
  }

  private static List<String> ids(String psJson) {
    List<String> ids = new ArrayList<>();
    for (JsonElement e : JsonParser.parseString(psJson).getAsJsonArray()) {
      ids.add(e.getAsJsonObject().get("job_id").getAsString());
    }
    return ids;
  }

  @Test
  void aUserOverTcpIsServedAsThemselves() throws Exception {
    String root = jobOf(cohort.cohort("run", "--detach", "--json", "--", "sh", "-c", TICKER));
    String mine = jobOf(overTcp("run", "--detach", "--json", "--", "sh", "-c", TICKER));
    JsonObject owner = cohort.job(mine).getAsJsonObject("owner");
    assertEquals(alice.uid(), owner.get("uid").getAsInt(), owner.toString());
    assertEquals(alice.gid(), owner.get("gid").getAsInt(), owner.toString());
    assertEquals(alice.name(), owner.get("user").getAsString());
    // Alice's ps lists her jobs (this one, and any an earlier test left ended), not root's.
    JsonArray seen = JsonParser.parseString(overTcp("ps", "--json").ok().out()).getAsJsonArray();
    assertTrue(ids(seen.toString()).contains(mine), seen.toString());
    for (JsonElement e : seen) {
      assertEquals(
          alice.uid(),
          e.getAsJsonObject().getAsJsonObject("owner").get("uid").getAsInt(),
          seen.toString());
    }
    Result kill = overTcp("kill", root);
    assertNotEquals(0, kill.rc(), "alice killed root's job over TCP: " + kill.out());
    assertTrue(kill.err().contains("belongs to root, not to " + alice.name()), kill.err());
    assertEquals(0, overTcp("kill", mine).rc());
    assertEquals("JOB_STATE_RUNNING", cohort.state(root));
    cohort.cohort("kill", root).ok();
  }

  @Test
  void noCallWithoutAValidCredentialChangesAnything() throws Exception {
    String root = jobOf(cohort.cohort("run", "--detach", "--json", "--", "sh", "-c", TICKER));
    String job = jobOf(overTcp("run", "--detach", "--json", "--", "sh", "-c", TICKER));
    JsonObject before = cohort.job(job);
    List<String> jobsBefore = ids(cohort.cohort("ps", "--json").ok().out());
    ManagedChannel ch =
        NettyChannelBuilder.forTarget(TCP)
            .sslContext(
                GrpcSslContexts.forClient()
                    .trustManager(cohort.home.resolve("cluster/tls/ca.crt").toFile())
                    .build())
            .build();
    try {
      CohortGrpc.CohortBlockingStub stub =
          CohortGrpc.newBlockingStub(ch).withDeadlineAfter(30, TimeUnit.SECONDS);
      KillJobRequest kill = KillJobRequest.newBuilder().setJobId(job).build();
      RunRequest run =
          RunRequest.newBuilder()
              .setSpec(JobSpec.newBuilder().addCommand("true").setCwd("/"))
              .build();

      // A valid credential of alice's, for the call it is sent with: served, as alice.
      List<JobInfo> seen =
          with(stub, aliceCredential(LIST))
              .listJobs(ListJobsRequest.getDefaultInstance())
              .getJobsList();
      assertEquals(List.of(job), seen.stream().map(JobInfo::getJobId).toList());

      refused("no credential", "no MUNGE credential", () -> stub.killJob(kill));
      refused(
          "garbage",
          "not a valid MUNGE credential",
          () -> with(stub, "MUNGE:garbage:").killJob(kill));
      String valid = aliceCredential(KILL);
      int at = valid.length() / 2;
      String forged =
          valid.substring(0, at) + (valid.charAt(at) == 'A' ? 'B' : 'A') + valid.substring(at + 1);
      refused("a changed character", "not a valid", () -> with(stub, forged).killJob(kill));
      refused(
          "another call's credential",
          "made for another call",
          () -> with(stub, aliceCredential(LIST)).killJob(kill));
      refused("a forged run", "not a valid", () -> with(stub, "MUNGE:AAAA:").run(run));

      // Replayed: the first use goes through (as alice: root's job is not hers, so nothing is
      // done), the second is refused though it names a job alice may kill.
      String once = aliceCredential(KILL);
      StatusRuntimeException first =
          assertThrows(
              StatusRuntimeException.class,
              () -> with(stub, once).killJob(KillJobRequest.newBuilder().setJobId(root).build()));
      assertEquals(Status.Code.PERMISSION_DENIED, first.getStatus().getCode(), first.toString());
      assertTrue(
          first.getStatus().getDescription().contains("not to " + alice.name()),
          "the first use is alice's call: " + first.getStatus());
      refused("a replayed credential", "replayed", () -> with(stub, once).killJob(kill));
    } finally {
      ch.shutdownNow();
      ch.awaitTermination(10, TimeUnit.SECONDS);
    }
    JsonObject after = cohort.job(job);
    assertEquals("JOB_STATE_RUNNING", after.get("state").getAsString(), after.toString());
    assertEquals(before.get("incarnation").getAsLong(), after.get("incarnation").getAsLong());
    assertEquals("JOB_STATE_RUNNING", cohort.state(root));
    assertEquals(jobsBefore, ids(cohort.cohort("ps", "--json").ok().out()), "no job was run");
    overTcp("kill", job).ok();
    cohort.cohort("kill", root).ok();
  }

  /** What alice's `munge` makes for a call of {@code method}, as the CLI asks for it. */
  private static String aliceCredential(String method) {
    Result r =
        UnixAccounts.as(
            alice, List.of("munge", "--string", "cohort " + method, "--restrict-uid", "0"));
    assertEquals(0, r.rc(), "munge as alice failed: " + r.err());
    return r.out().strip();
  }

  private static CohortGrpc.CohortBlockingStub with(
      CohortGrpc.CohortBlockingStub stub, String credential) {
    Metadata h = new Metadata();
    h.put(Metadata.Key.of("cohort-munge", Metadata.ASCII_STRING_MARSHALLER), credential);
    return stub.withInterceptors(MetadataUtils.newAttachHeadersInterceptor(h));
  }

  private static void refused(String what, String says, Supplier<?> call) {
    StatusRuntimeException e =
        assertThrows(StatusRuntimeException.class, call::get, what + " was served");
    assertEquals(Status.Code.UNAUTHENTICATED, e.getStatus().getCode(), what + ": " + e.getStatus());
    assertTrue(
        e.getStatus().getDescription().contains(says),
        what + ": " + e.getStatus().getDescription());
  }
}
