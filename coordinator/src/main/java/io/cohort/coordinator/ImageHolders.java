package io.cohort.coordinator;

import io.cohort.proto.v1.CheckpointInfo;
import io.cohort.proto.v1.ImageCopy;
import io.cohort.proto.v1.ImageCopyState;
import io.cohort.proto.v1.VhostPlacement;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Where the copies of a checkpoint's images are, and which one a restart uses: the image its node
 * wrote, then the complete copies (partner copies, copies earlier restarts brought to other nodes),
 * each usable while its node is up and not declared dead, or while another node that is shares its
 * image store.
 */
final class ImageHolders {
  /** One intact copy of a vhost's image: where it is and what it is ("original", ...). */
  record Holder(String node, String store, String copy) {}

  /**
   * The image a restart takes for one vhost: from {@code holder}; in place when the target node
   * holds it (or shares its store), else brought over from {@code holder.node()}.
   */
  record Source(Holder holder, boolean inPlace) {}

  private final AgentDirectory agents;

  ImageHolders(AgentDirectory agents) {
    this.agents = agents;
  }

  /** The intact copies of a vhost's image, the original first. */
  static List<Holder> holders(CheckpointInfo c, String vhostId) {
    List<Holder> out = new ArrayList<>();
    for (VhostPlacement v : c.getVhostsList()) {
      if (v.getVhostId().equals(vhostId)) {
        out.add(
            new Holder(
                v.getNode(), c.getImageStoreOrDefault(vhostId, ""), "original on " + v.getNode()));
      }
    }
    for (ImageCopy k : c.getCopiesList()) {
      if (k.getVhostId().equals(vhostId)
          && k.getState() == ImageCopyState.IMAGE_COPY_STATE_COMPLETE) {
        out.add(
            new Holder(k.getNode(), k.getImageStore(), k.getReason() + " copy on " + k.getNode()));
      }
    }
    return out;
  }

  /** Where the restart of {@code vhostId} on {@code target} takes its image; empty: nowhere. */
  Optional<Source> source(CheckpointInfo c, String vhostId, String target) {
    String targetStore = agents.imageStore(target);
    List<Holder> all = holders(c, vhostId);
    for (Holder h : all) {
      if (h.node().equals(target) || (!h.store().isEmpty() && h.store().equals(targetStore))) {
        return Optional.of(new Source(h, true));
      }
    }
    for (Holder h : all) {
      if (agents.isUsable(h.node())) {
        return Optional.of(new Source(h, false));
      }
    }
    // Held only by nodes that are down, in a store a live node shares: that node sends it.
    for (Holder h : all) {
      Optional<String> sharer = sharer(h.store());
      if (sharer.isPresent()) {
        return Optional.of(new Source(new Holder(sharer.get(), h.store(), h.copy()), false));
      }
    }
    return Optional.empty();
  }

  /**
   * Why a checkpoint cannot be restored now (a vhost whose every copy is on a node that is down or
   * declared dead), or empty when it can.
   */
  Optional<String> unavailable(CheckpointInfo c) {
    for (VhostPlacement v : c.getVhostsList()) {
      List<Holder> all = holders(c, v.getVhostId());
      boolean reachable =
          all.stream().anyMatch(h -> agents.isUsable(h.node()) || sharer(h.store()).isPresent());
      if (!reachable) {
        List<String> where = all.stream().map(Holder::node).distinct().toList();
        String pending =
            c.getCopiesList().stream()
                    .anyMatch(
                        k ->
                            k.getVhostId().equals(v.getVhostId())
                                && k.getState() == ImageCopyState.IMAGE_COPY_STATE_COPYING)
                ? " (its partner copy had not finished)"
                : "";
        return Optional.of(
            String.format(
                "the image of vhost %s is only on %s, which %s down or declared dead%s",
                v.getVhostId(),
                String.join(" and ", where),
                where.size() == 1 ? "is" : "are",
                pending));
      }
    }
    return Optional.empty();
  }

  /** A node that is up and uses image store {@code store} (empty for an unknown store). */
  private Optional<String> sharer(String store) {
    if (store.isEmpty()) {
      return Optional.empty();
    }
    return agents.nodes().stream()
        .filter(n -> store.equals(agents.imageStore(n)) && agents.isUsable(n))
        .findFirst();
  }
}
