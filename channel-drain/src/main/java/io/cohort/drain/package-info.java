/**
 * The Netty overlay between node agents: IP packets of jobs between vhosts on different nodes, one
 * TCP connection per node pair, and the per-epoch drain of those connections at a checkpoint
 * (markers, recording, re-injection).
 *
 * <p>Entry point: {@link io.cohort.drain.Overlay}. The local vhosts are behind a {@link
 * io.cohort.drain.PacketSink}; which node hosts which vhost address is in {@link
 * io.cohort.drain.Routes}. Wire format: {@link io.cohort.drain.FrameCodec}. Depends on Netty and
 * SLF4J only; knows nothing of gRPC.
 */
package io.cohort.drain;
