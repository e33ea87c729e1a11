package io.cohort.agent;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.google.protobuf.ByteString;
import io.cohort.proto.v1.CreateVhostRequest;
import io.cohort.proto.v1.JobSpec;
import io.cohort.proto.v1.Owner;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A vhost is created for its owner: cohort-init is told the owner's credentials, Open MPI's
 * run-as-root variables go to root's jobs only, the job's files are the owner's (0600) in a
 * directory only root can list, and the record keeps the owner. cohort-init is a script here that
 * records how it was run (the native tests run the real one as a real account).
 */
class JobOwnerTest {
  private static final Owner ALICE =
      Owner.newBuilder().setUid(4242).setGid(4343).addGroups(4343).addGroups(4444).build();

  @TempDir Path home;
  private VhostRecords records;
  private Vhosts vhosts;
  private Path seen;

  @BeforeEach
  void setUp() throws Exception {
    Assumptions.assumeTrue(LibC.INSTANCE.geteuid() == 0, "giving files to another uid needs root");
    seen = home.resolve("seen");
    Path init = home.resolve("cohort-init");
    Files.writeString(
        init,
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > " + seen + ".argv\nenv > " + seen + ".env\necho $$\n");
    init.toFile().setExecutable(true);
    AgentConfig config = AgentConfig.defaults("n1", home, home, "criu");
    records = new VhostRecords(config.vhostsDir(), "n1");
    vhosts =
        new Vhosts(
            config,
            records,
            new VhostLauncher(init, java.time.Duration.ofSeconds(10)),
            null,
            init,
            home.resolve("cohort-rsh"),
            false,
            r -> {});
  }

  private CreateVhostRequest request(String vhost, Owner owner) {
    CreateVhostRequest.Builder b =
        CreateVhostRequest.newBuilder()
            .setJobId(vhost.split("-")[0])
            .setVhostId(vhost)
            .setHostname("h")
            .setSpec(
                JobSpec.newBuilder()
                    .addCommand("true")
                    .setCwd("/")
                    .addEnv("OMPI_ALLOW_RUN_AS_ROOT=1")
                    .addEnv("HOME=/root"))
            .setStdin(ByteString.copyFromUtf8("input\n"));
    return owner == null ? b.build() : b.setOwner(owner).build();
  }

  private List<String> argv() throws Exception {
    return Files.readAllLines(Path.of(seen + ".argv"));
  }

  private List<String> env() throws Exception {
    return Files.readAllLines(Path.of(seen + ".env"));
  }

  @Test
  void aUsersJobRunsAsTheUserAndItsFilesAreTheUsersOnly() throws Exception {
    vhosts.create(request("5-0", ALICE));

    String args = String.join(" ", argv());
    assertTrue(args.contains("--uid 4242 --gid 4343 --groups 4343,4444 --"), args);
    assertFalse(env().stream().anyMatch(e -> e.startsWith("OMPI_ALLOW_RUN_AS_ROOT")), "" + env());
    Path dir = records.vhostDir("5-0");
    assertEquals("rwx--x--x", PosixFilePermissions.toString(Files.getPosixFilePermissions(dir)));
    assertEquals(0, Files.getAttribute(dir, "unix:uid"));
    for (String f : List.of("output.log", "stderr.log", "output.order", "stdin")) {
      Path p = dir.resolve(f);
      assertEquals(4242, Files.getAttribute(p, "unix:uid"), f);
      assertEquals(4343, Files.getAttribute(p, "unix:gid"), f);
      assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(p)));
    }
    assertEquals(ALICE, records.load("5-0").getOwner());
  }

  @Test
  void aJobWithoutAnOwnerIsRootsAsBefore() throws Exception {
    vhosts.create(request("6-0", null));

    assertTrue(String.join(" ", argv()).contains("--uid 0 --gid 0 --groups  --"), "" + argv());
    assertTrue(env().contains("OMPI_ALLOW_RUN_AS_ROOT=1"), "" + env());
    assertTrue(env().contains("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"), "" + env());
    assertTrue(env().stream().anyMatch(e -> e.startsWith("PATH=") && e.contains("sbin")));
    Path log = records.vhostDir("6-0").resolve("output.log");
    assertEquals(0, Files.getAttribute(log, "unix:uid"));
    assertEquals(JobOwner.ROOT, records.load("6-0").getOwner());
  }

  @Test
  void runAsRootVariablesFollowTheOwnerNotTheAgent() {
    var env = new java.util.HashMap<String, String>();
    env.put("OMPI_ALLOW_RUN_AS_ROOT", "1");
    JobOwner.runAsRootVariables(ALICE, env);
    assertEquals(java.util.Map.of(), env);
    JobOwner.runAsRootVariables(JobOwner.ROOT, env);
    assertEquals("1", env.get("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"));
  }
}
