package io.cohort.agent;

import io.cohort.common.Ids;
import io.cohort.proto.v1.AbandonedDump;
import io.cohort.proto.v1.ConfigureJobNetworkRequest;
import io.cohort.proto.v1.CreateVhostRequest;
import io.cohort.proto.v1.CreateVhostResponse;
import io.cohort.proto.v1.DumpVhostRequest;
import io.cohort.proto.v1.DumpVhostResponse;
import io.cohort.proto.v1.FinishCheckpointRequest;
import io.cohort.proto.v1.FinishCheckpointResponse;
import io.cohort.proto.v1.GetNodeResponse;
import io.cohort.proto.v1.GetVhostResponse;
import io.cohort.proto.v1.ImageChunk;
import io.cohort.proto.v1.ImportImageRequest;
import io.cohort.proto.v1.ImportImageResponse;
import io.cohort.proto.v1.ListImagesResponse;
import io.cohort.proto.v1.OutputChunk;
import io.cohort.proto.v1.PrepareCheckpointRequest;
import io.cohort.proto.v1.PrepareCheckpointResponse;
import io.cohort.proto.v1.ReadOutputRequest;
import io.cohort.proto.v1.RestoreVhostRequest;
import io.cohort.proto.v1.RestoreVhostResponse;
import io.cohort.proto.v1.ResumeVhostRequest;
import io.cohort.proto.v1.ResumeVhostResponse;
import io.cohort.proto.v1.SealImageRequest;
import io.cohort.proto.v1.SealImageResponse;
import io.cohort.proto.v1.StoredImage;
import io.cohort.proto.v1.VerifyImageRequest;
import io.cohort.proto.v1.VhostState;
import io.grpc.ManagedChannel;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import java.util.function.Function;

/**
 * The node agent: a facade over the parts that do the work, each in a file named after it.
 * Transport-neutral: {@link AgentGrpcService} is its thin gRPC adapter.
 *
 * <ul>
 *   <li>{@link Vhosts}: create, observe and end vhosts; {@link VhostRecords} keeps their records;
 *   <li>{@link CheckpointParticipant}: the agent's half of the barrier (prepare, dump, resume,
 *       seal, finish), one {@link ParticipantDump} state machine per dump;
 *   <li>{@link Restorer}: verify and restore images;
 *   <li>{@link JobNetwork}: routes between a job's vhosts across nodes, re-injection;
 *   <li>{@link ImageTransfer}: images between nodes; {@link OutputLog}: the job's output;
 *   <li>behind interfaces, for tests and for change: {@link Criu}, {@link ImageStore}, {@link
 *       VhostNetwork}, {@link ChannelCuts}.
 * </ul>
 */
public final class NodeAgent {
  private static final org.slf4j.Logger log = org.slf4j.LoggerFactory.getLogger(NodeAgent.class);

  /** How long a cut waits for the other nodes' markers once every vhost is dumped. */
  private static final Duration MARKER_TIMEOUT = Duration.ofSeconds(20);

  private final AgentConfig config;
  private final Criu criu;
  private final ImageStore images;
  private final Vhosts vhosts;
  private final CheckpointPreflight preflight;
  private final CheckpointParticipant participant;
  private final Restorer restorer;
  private final RestoreHolds holds;
  private final VhostRecords records;
  private final JobNetwork jobNetwork;
  private final ImageTransfer transfer;
  private final OutputLog output;
  private volatile String criuVersion;

  public NodeAgent(AgentConfig config) {
    this(config, null);
  }

  /**
   * An agent that can fetch images from other nodes' agents; {@code dial} opens a channel to an
   * agent's address (null: images never move between nodes, as in the embedded mode).
   */
  public NodeAgent(AgentConfig config, Function<String, ManagedChannel> dial) {
    this(config, dial, null);
  }

  /** A node agent whose vhosts reach other nodes through {@code overlay} (null: none). */
  public NodeAgent(
      AgentConfig config, Function<String, ManagedChannel> dial, VhostOverlay overlay) {
    this(config, dial, overlay, DataPath.overlay());
  }

  /**
   * A node agent whose vhosts reach other nodes by {@code path}, with {@code overlay} for the cut
   * (and, on the user-space path, for every packet).
   */
  public NodeAgent(
      AgentConfig config,
      Function<String, ManagedChannel> dial,
      VhostOverlay overlay,
      DataPath path) {
    this(
        config,
        dial,
        overlay,
        new CriuEngine(
            config.criuCommand(), config.initBinary().resolveSibling("libcohort-prlimit.so")),
        new LocalImageStore(config.imagesDir(), config.pendingName(), config.checkpointKey()),
        new IpVhostNetwork(path.vhostMtu()),
        overlay != null && path.kernel()
            ? new KernelPath(overlay.address().getHostString(), path)
            : null);
  }

  /** The agent over the given parts (tests pass fakes). */
  NodeAgent(
      AgentConfig config,
      Function<String, ManagedChannel> dial,
      VhostOverlay overlay,
      Criu criu,
      ImageStore images,
      VhostNetwork network,
      KernelPath kernel) {
    this.config = config;
    this.criu = criu;
    this.images = images;
    Path initPath =
        NativeInstalls.contentAddressed(config.initBinary(), config.home(), "cohort-init");
    Path rshPath = NativeInstalls.contentAddressed(config.rshBinary(), config.home(), "cohort-rsh");
    this.records = new VhostRecords(config.vhostsDir(), config.node());
    this.output = new OutputLog(records, config.node());
    this.jobNetwork = new JobNetwork(config.node(), records, overlay, network, kernel);
    this.vhosts =
        new Vhosts(
            config,
            records,
            new VhostLauncher(initPath, config.launchTimeout()),
            network,
            initPath,
            rshPath,
            overlay != null && kernel == null,
            jobNetwork::remove);
    this.preflight = new CheckpointPreflight(config, records, images);
    Path actionScript = NativeInstalls.actionScript(config.home());
    ProcessIdentity self = ProcessIdentity.of(ProcessHandle.current().pid()).orElseThrow();
    this.participant =
        new CheckpointParticipant(
            config,
            records,
            images,
            criu,
            ChannelCuts.overlay(overlay, MARKER_TIMEOUT),
            actionScript,
            self,
            this::criuVersion,
            vhosts::dropLink);
    this.holds = new RestoreHolds(criu, actionScript, self, config.criuTimeout());
    this.restorer =
        new Restorer(config.node(), records, images, holds, network, jobNetwork, output);
    this.transfer = new ImageTransfer(config, images, dial, initPath);
    // What a predecessor left mid-epoch goes as its decision leases would have let it go.
    participant.cleanUpAfterPredecessor();
    vhosts.resumeStopped();
    warmUpOwnerChecks();
  }

  /**
   * A user's checkpoint reads its vhosts' tasks and images ({@link RunningTasks}, {@link
   * ImageCredentials}); the classes that takes load in the background now, not in the first one.
   */
  private void warmUpOwnerChecks() {
    Thread t =
        new Thread(
            () -> {
              try {
                RunningTasks.warmUp();
                ImageCredentials.warmUp();
              } catch (IOException | RuntimeException e) {
                log.debug("{}: warming up the owner checks: {}", config.node(), e.toString());
              }
            },
            "owner-checks-warm-up");
    t.setDaemon(true);
    t.start();
  }

  public String node() {
    return config.node();
  }

  public GetNodeResponse describe() {
    return GetNodeResponse.newBuilder()
        .setNode(config.node())
        .setKernel(kernel())
        .setCriuVersion(criuVersion())
        .setImageStoreFreeBytes(images.freeBytes())
        .setImageStoreId(images.id())
        .build();
  }

  // ---------------------------------------------------------------- vhosts

  public CreateVhostResponse createVhost(CreateVhostRequest req) {
    return vhosts.create(req);
  }

  /** The vhost as it is now; changes nothing. */
  public GetVhostResponse getVhost(String vhostId) {
    return vhosts.get(vhostId);
  }

  /** Ends a vhost (if running) and cleans up after it; idempotent. */
  public VhostState kill(String vhostId) {
    holds.release(List.of(vhostId)); // a restored vhost still held: it ends as a running one
    return vhosts.kill(vhostId);
  }

  /** See {@link Vhosts#signal}. */
  public void signal(String vhostId, int signal) {
    vhosts.signal(vhostId, signal);
  }

  // ---------------------------------------------------------------- checkpoint phases

  public PrepareCheckpointResponse prepare(PrepareCheckpointRequest req) {
    return preflight.prepare(req);
  }

  public DumpVhostResponse dump(DumpVhostRequest req) {
    return participant.dump(req);
  }

  public ResumeVhostResponse resume(ResumeVhostRequest req) {
    return participant.resume(req);
  }

  public SealImageResponse seal(SealImageRequest req) {
    return participant.seal(req);
  }

  public FinishCheckpointResponse finish(FinishCheckpointRequest req) {
    return participant.finish(req);
  }

  /**
   * The dumps this agent ended without the coordinator's decision (its lease ran out, or its
   * predecessor left them) and has not reported yet: for the heartbeat.
   */
  public List<AbandonedDump> abandonedDumps() {
    // Again at each heartbeat, not only at the start: a predecessor's CRIU may still be writing
    // its image when this agent starts, and files it writes after the first sweep would stay.
    participant.cleanUpAfterPredecessor();
    return participant.abandoned();
  }

  /** A heartbeat carrying {@code sent} was answered: the coordinator knows of them. */
  public void reported(List<AbandonedDump> sent) {
    participant.reported(sent);
  }

  // ---------------------------------------------------------------- restore, images

  public void verify(VerifyImageRequest req) {
    restorer.verify(req);
  }

  public RestoreVhostResponse restore(RestoreVhostRequest req) {
    return restorer.restore(req);
  }

  public void deleteImage(String ckpt, String vhostId) {
    images.delete(Ids.requireCheckpoint(ckpt), Ids.requireVhost(vhostId));
  }

  /** The published images of this node's store, for the coordinator's sweep of orphans. */
  public ListImagesResponse listImages() {
    ListImagesResponse.Builder out = ListImagesResponse.newBuilder().setImageStoreId(images.id());
    for (String image : images.list()) {
      String[] p = image.split("/", 2);
      out.addImages(
          StoredImage.newBuilder()
              .setCheckpointId(p[0])
              .setVhostId(p[1])
              .setBytes(images.bytes(p[0], p[1])));
    }
    return out.build();
  }

  /** Streams a committed image to another node's agent (see {@link ImageTransfer}). */
  public void exportImage(
      String ckpt, String vhostId, Consumer<ImageChunk> sink, BooleanSupplier cancelled) {
    transfer.export(ckpt, vhostId, sink, cancelled);
  }

  /** Fetches an image from another node's agent (see {@link ImageTransfer}). */
  public ImportImageResponse importImage(ImportImageRequest req) {
    return transfer.importImage(req);
  }

  // ---------------------------------------------------------------- job network, output

  public void configureJobNetwork(ConfigureJobNetworkRequest req) {
    jobNetwork.configure(req);
  }

  /** Lets the job's restored vhosts held here run; returns how many there were. */
  public int releaseRestored(String jobId) {
    return holds.release(records.ofJob(Ids.requireJob(jobId)));
  }

  /** Where this node's overlay listens ("" when it has none). */
  public String overlayAddress() {
    return jobNetwork.overlayAddress();
  }

  public void readOutput(
      ReadOutputRequest req, Consumer<OutputChunk> sink, BooleanSupplier cancelled) {
    output.read(req, sink, cancelled);
  }

  // ---------------------------------------------------------------- node facts

  /** `criu --version`, asked once (heartbeats and manifests need it often). */
  private String criuVersion() {
    if (criuVersion == null) {
      try {
        criuVersion = criu.version();
      } catch (CriuException e) {
        return "unavailable: " + e.getMessage();
      }
    }
    return criuVersion;
  }

  static String kernel() {
    try {
      return Files.readString(Path.of("/proc/sys/kernel/osrelease")).strip();
    } catch (IOException e) {
      return "unknown";
    }
  }
}
