package io.cohort.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Part 8: partner copies. A job of two vhosts (n1 and n2, one memfill rank each holding 64 MB, then
 * 1 GB) is checkpointed with `--images none` and, as a second job, with `--images partner`. With
 * partner copies: the time from the commit to "partner complete" (from the checkpoint's record: the
 * commit time and each copy's completion time), the bytes copied and the copies' rate, against a
 * plain TCP stream between n1's and n2's namespaces (the path n1's image takes to its partner),
 * measured after each copy. With both: the checkpoint's total and the job's freeze, which the
 * copies must not grow (they run after the commit).
 */
final class PartnerCost {
  static final List<Integer> SIZES_MB = List.of(64, 1024);

  /** What the path is measured with: as much as a 1 GB vhost's image. */
  private static final int STREAM_MB = 1024;

  private static final Pattern STREAM = Pattern.compile("bytes (\\d+) ms ([\\d.]+) mb_s ([\\d.]+)");
  private static final Duration COPY_LIMIT = Duration.ofMinutes(10);

  private final Cluster cluster;
  private final Cli cli;
  private final int reps;
  private final Path memfill;
  private final Path tcpstream;

  PartnerCost(Cluster cluster, int reps, Path bin) {
    this.cluster = cluster;
    this.cli = cluster.cli;
    this.reps = reps;
    this.memfill = bin.resolve("memfill");
    this.tcpstream = bin.resolve("tcpstream");
  }

  /** One policy's checkpoints of one job. */
  private static final class Side {
    final Stats total = new Stats();
    final Stats frozen = new Stats();
    final Stats commitToComplete = new Stats();
    final Stats copyMs = new Stats();
    final Stats copyRate = new Stats();
    final Stats pathRate = new Stats();
    long imageBytes;
    long bytesCopied;
  }

  JsonArray run() throws InterruptedException {
    // The daemons are long-running: let their JIT compile the checkpoint path first, as on any
    // cluster that has taken checkpoints. Without this, whichever job went first on the fresh
    // cluster checkpointed 80-100 ms slower at 64 MB (partner or none alike).
    side(SIZES_MB.get(0), "none");
    JsonArray out = new JsonArray();
    for (int mb : SIZES_MB) {
      // None first: the partner copies are not fsync'd on arrival, and the kernel writes them
      // back over the next tens of seconds, competing with the seal of the checkpoints that
      // follow. That cost is partner copies' own, so it must fall on the partner job's
      // checkpoints, not on the baseline's.
      Side none = side(mb, "none");
      Side partner = side(mb, "partner");
      JsonObject r = new JsonObject();
      r.addProperty("memory_mb_per_vhost", mb);
      r.addProperty("vhosts", 2);
      r.addProperty("image_bytes", partner.imageBytes);
      r.addProperty("bytes_copied", partner.bytesCopied);
      r.add("commit_to_partner_complete_ms", partner.commitToComplete.json());
      r.add("copy_ms", partner.copyMs.json());
      r.add("copy_rate_mb_s", partner.copyRate.json());
      r.add("path_tcp_mb_s", partner.pathRate.json());
      r.add("partner_checkpoint_ms", partner.total.json());
      r.add("partner_frozen_ms", partner.frozen.json());
      r.add("none_checkpoint_ms", none.total.json());
      r.add("none_frozen_ms", none.frozen.json());
      r.addProperty("checkpoint_partner_vs_none", partner.total.median() / none.total.median());
      r.addProperty("frozen_partner_vs_none", partner.frozen.median() / none.frozen.median());
      System.out.printf(
          "  %d MB per vhost: commit -> partner complete %s ms, %.0f MB copied at %s MB/s "
              + "(path %s MB/s); checkpoint %s vs %s ms, frozen %s vs %s ms (partner vs none)%n",
          mb,
          partner.commitToComplete.cell(),
          partner.bytesCopied / 1e6,
          partner.copyRate.cell(),
          partner.pathRate.cell(),
          partner.total.cell(),
          none.total.cell(),
          partner.frozen.cell(),
          none.frozen.cell());
      out.add(r);
    }
    return out;
  }

  private Side side(int mb, String policy) throws InterruptedException {
    System.out.printf("bench: partner copies, %d MB per vhost, --images %s%n", mb, policy);
    Side s = new Side();
    String job =
        cli.run(
            "n1,n2",
            1,
            List.of("--images", policy),
            "mpirun",
            "-np",
            "2",
            memfill.toString(),
            Integer.toString(mb));
    cli.awaitOutput("n1", job, "ready", 2, Duration.ofMinutes(5));
    // The first dump after a process filled its memory is slow (part 1): one unmeasured
    // checkpoint, and its copies, first.
    for (int i = -1; i < reps; i++) {
      JsonObject c = cli.cohort("checkpoint", job, "--json").json();
      String id = c.get("checkpoint").getAsString();
      JsonObject rec =
          policy.equals("partner") ? awaitProtected(job, id) : cli.checkpointRecord(job, id);
      if (i >= 0) {
        JsonObject t = rec.getAsJsonObject("timings");
        s.total.add(CheckpointCost.num(t, "total_ms"));
        s.frozen.add(CheckpointCost.num(t, "freeze_ms"));
        s.imageBytes = c.get("image_bytes").getAsLong();
        if (policy.equals("partner")) {
          copies(rec, s);
          s.pathRate.add(stream("n1", "n2"));
        } else if (rec.has("copies") && !rec.getAsJsonArray("copies").isEmpty()) {
          throw new IllegalStateException("checkpoint " + id + " of --images none has copies");
        }
      }
      cli.cohort("rm", id);
    }
    cli.cohort("kill", job);
    return s;
  }

  /** The checkpoint's record once its partner copies are complete (a failed copy is an error). */
  private JsonObject awaitProtected(String job, String id) throws InterruptedException {
    long deadline = System.nanoTime() + COPY_LIMIT.toNanos();
    while (true) {
      // Each look is a `cohort checkpoints` process; the figures come from the record's own
      // times, so how often we look changes only how much CPU the looking takes from the copy.
      JsonObject rec = cli.checkpointRecord(job, id);
      String p = rec.has("protection") ? rec.get("protection").getAsString() : "";
      if (p.equals("PROTECTION_PARTNER_COMPLETE")) {
        return rec;
      }
      if (!p.equals("PROTECTION_PARTNER_COPYING") || System.nanoTime() > deadline) {
        throw new IllegalStateException(
            "checkpoint "
                + id
                + " is "
                + p
                + " ("
                + (rec.has("protection_detail") ? rec.get("protection_detail").getAsString() : "")
                + "), not partner complete within "
                + COPY_LIMIT);
      }
      Thread.sleep(1000);
    }
  }

  /** Commit to the last copy's completion; the copies' bytes and time (one after the other). */
  private static void copies(JsonObject rec, Side s) {
    long created = rec.get("created_unix_ms").getAsLong();
    long last = created;
    long bytes = 0;
    long ms = 0;
    for (JsonElement e : rec.getAsJsonArray("copies")) {
      JsonObject k = e.getAsJsonObject();
      if (!k.get("reason").getAsString().equals("partner")) {
        continue;
      }
      last = Math.max(last, k.get("completed_unix_ms").getAsLong());
      bytes += k.get("bytes").getAsLong();
      ms += k.has("copy_ms") ? k.get("copy_ms").getAsLong() : 0;
    }
    if (bytes == 0) {
      throw new IllegalStateException(
          "checkpoint " + rec.get("checkpoint_id").getAsString() + " copied nothing: " + rec);
    }
    s.commitToComplete.add(last - created);
    s.copyMs.add(ms);
    s.copyRate.add(bytes / 1e3 / Math.max(ms, 1));
    s.bytesCopied = bytes;
  }

  /** MB/s of one plain TCP stream from a node's namespace to another node's address. */
  private double stream(String from, String to) {
    String out =
        cli.must(
                tcpstream.toString(),
                cluster.namespace(from),
                cluster.namespace(to),
                cluster.address(to),
                Integer.toString(STREAM_MB))
            .out();
    Matcher m = STREAM.matcher(out);
    if (!m.find()) {
      throw new IllegalStateException("tcpstream printed no rate:\n" + out);
    }
    return Double.parseDouble(m.group(3));
  }
}
