package io.cohort.cli;

import com.google.protobuf.ByteString;
import io.cohort.proto.v1.CohortGrpc;
import io.cohort.proto.v1.JobInfo;
import io.cohort.proto.v1.JobSpec;
import io.cohort.proto.v1.RunRequest;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

@Command(
    name = "run",
    mixinStandardHelpOptions = true,
    description = {
      "Run CMD in a new virtual host (its own PIDs, network, hostname, /tmp and " + "/dev/shm).",
      "Without --detach, streams the job's output and exits with CMD's exit status "
          + "(75 if a checkpoint stopped it, 137 if it was killed). Ctrl-C detaches; the job "
          + "keeps running.",
      "A plain `mpirun -np N prog` works inside: Cohort sets what Open MPI needs "
          + "(oversubscription; for root's jobs, running as root). A job runs as whoever runs "
          + "this command.",
      "Standard input: a file, pipe or here-document (`< in.deck`) is read to its end and kept "
          + "with the job, which reads it as mpirun passes it on (to rank 0); a restart reads on "
          + "where the checkpoint left it, on any node. At most COHORT_STDIN_MAX (default 16M). "
          + "A terminal is not read: the job gets none.",
      "The job's stdout and stderr are kept apart: attached, they go to this command's stdout "
          + "and stderr. SIGUSR1 and SIGUSR2 sent to this command are passed on to the job "
          + "(mpirun passes them to its ranks); SIGTERM takes a checkpoint and stops the job "
          + "(exit 75; `cohort restart JOB` goes on), as a batch system's warning before it "
          + "ends the allocation needs."
    },
    footer = {
      "",
      "Example: cohort run --detach -- mpirun -np 4 ./ring 1000",
      "         cohort run --vhosts 4 --nodes n1,n2 -- mpirun -np 8 ./ring 1000"
    })
final class RunCommand implements Callable<Integer> {
  @Mixin ConnectionOptions connection = new ConnectionOptions();

  @Option(names = "--name", description = "a name to show in `cohort ps`")
  String name = "";

  @Option(
      names = {"-d", "--detach"},
      description =
          "print the job id and return at once. Standard input is read first all the same (a "
              + "file or pipe, to its end; a terminal, not at all): use </dev/null to give the "
              + "job none. Signals to this command then no longer reach the job: `cohort kill "
              + "--signal SIG JOB` does, `cohort checkpoint --stop JOB` stops it")
  boolean detach;

  @Option(
      names = "--json",
      description =
          "print {\"job\": ID, \"vhosts\": [{\"vhost\": ID, "
              + "\"node\": NODE}, ...], \"unused_nodes\": [...]} as JSON")
  boolean json;

  @Option(
      names = "--nodes",
      split = ",",
      paramLabel = "NODE",
      description = {
        "the nodes to run on (see `cohort nodes`), all known and up. Names all "
            + "different: a set the vhosts are spread over evenly, in runs in the order listed; "
            + "the vhosts left over, and with more nodes than vhosts the vhosts themselves, go to "
            + "the nodes with the fewest running vhosts, and nodes left unused are named on "
            + "stderr. A name repeated: the node of each vhost in turn, one entry per vhost "
            + "(--nodes n1,n1,n2). Without --vhosts: one vhost per entry.",
        "Default: all vhosts on the live node with the fewest running vhosts."
      })
  List<String> nodes = List.of();

  @Option(
      names = "--vhosts",
      paramLabel = "K",
      description =
          "number of vhosts (default: 1, "
              + "or one per --nodes entry). With more than one, the vhosts get addresses on the job's "
              + "own network and the command's mpirun spans them all with no extra flags (needs a "
              + "cluster)")
  int vhosts;

  @Option(
      names = "--slots",
      paramLabel = "N",
      description = "MPI slots per vhost in " + "mpirun's hostfile (default: this machine's cores)")
  int slots = Runtime.getRuntime().availableProcessors();

  @Option(
      names = "--images",
      paramLabel = "POLICY",
      description =
          "where this job's checkpoint images are kept: partner (also copied to another node "
              + "after each commit, so losing one node loses no checkpoint) or none (only on the "
              + "node that wrote them). Default: the cluster's (partner unless its coordinator "
              + "says otherwise)")
  String images;

  @Parameters(
      arity = "1..*",
      paramLabel = "CMD",
      description = "the command and its arguments " + "(put them after --)")
  List<String> command;

  @Override
  public Integer call() throws Exception {
    Path cwd = Path.of("").toAbsolutePath();
    // Before anything is created; $PATH is the job's too (the environment is passed on).
    VisibleInVhost.check(cwd, command, System.getenv("PATH"));
    JobSpec.Builder spec =
        JobSpec.newBuilder().setName(name).addAllCommand(command).setCwd(cwd.toString());
    System.getenv().forEach((k, v) -> spec.addEnv(k + "=" + v));
    if (images != null) {
      spec.setImagePolicy(OptionValues.imagePolicy("--images", images));
    }
    ByteString stdin =
        JobStdin.read(System.in, Embedded.Settings.fromEnvironment().stdinMax(), System.err);
    try (Cli cli = Cli.forChange(connection, CohortGrpc.getRunMethod())) {
      JobInfo job =
          cli.call(60)
              .run(
                  RunRequest.newBuilder()
                      .setSpec(spec)
                      .addAllNodes(nodes)
                      .setVhosts(vhosts)
                      .setSlots(slots)
                      .setStdin(stdin)
                      .build())
              .getJob();
      if (json) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("job", job.getJobId());
        m.put("vhosts", PlacementReport.json(job));
        m.put("unused_nodes", PlacementReport.unused(nodes, job));
        cli.json(m);
      } else if (detach) {
        cli.out.println(job.getJobId());
        cli.err.printf("cohort: job %s: %s%n", job.getJobId(), PlacementReport.where(job));
      } else {
        cli.err.printf(
            "cohort: job %s started: %s (log: %s)%n",
            job.getJobId(), PlacementReport.where(job), job.getLogPath());
      }
      PlacementReport.noteUnused(cli.err, nodes, job);
      cli.out.flush();
      if (detach) {
        return 0;
      }
      AttachedSignals signals = AttachedSignals.install(cli, job.getJobId());
      cli.follow(job.getJobId(), 0);
      int rc = cli.await(job.getJobId());
      signals.awaitCheckpoint();
      return rc;
    }
  }
}
