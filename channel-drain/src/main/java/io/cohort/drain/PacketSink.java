package io.cohort.drain;

import io.netty.buffer.ByteBuf;

/**
 * Where the overlay hands the IP packets for this node's vhosts: the node's TUN device in the
 * agent, a list in tests.
 *
 * <p>Called on an overlay event loop: the implementation must not block (a non-blocking write to a
 * TUN fd is fine; waiting for room is not — drop instead, as IP may). Calls for one job are
 * serialized and in the order the overlay decided; calls for different jobs may be concurrent.
 */
@FunctionalInterface
public interface PacketSink {

  /**
   * Delivers one IP packet of {@code jobId} to the local vhost at {@code dstAddress}. The sink owns
   * {@code packet} and must release it, also when it throws.
   */
  void deliver(String jobId, int dstAddress, ByteBuf packet);
}
