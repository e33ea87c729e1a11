package io.cohort.drain;

import io.netty.channel.ChannelInitializer;
import io.netty.channel.ChannelPipeline;
import io.netty.channel.socket.SocketChannel;
import io.netty.handler.flush.FlushConsolidationHandler;
import java.net.InetSocketAddress;

/**
 * The pipeline of every overlay channel, in order: TLS (when the overlay has it) → flush
 * consolidation → length framing → {@link FrameCodec} → {@link PeerHandler}.
 *
 * <p>One class for both sides (accepted and dialed channels) rather than one per side: the
 * pipelines are identical except for who speaks first, and one class keeps them from drifting
 * apart. A new instance per dial carries the name of the node dialed.
 */
final class OverlayChannelInitializer extends ChannelInitializer<SocketChannel> {

  private final Overlay overlay;
  private final String dialedPeer;
  private final InetSocketAddress dialed;

  /**
   * @param dialedPeer the node being dialed, or null for the server side
   * @param dialed its address (the TLS client checks the peer's certificate against it), or null
   */
  OverlayChannelInitializer(Overlay overlay, String dialedPeer, InetSocketAddress dialed) {
    this.overlay = overlay;
    this.dialedPeer = dialedPeer;
    this.dialed = dialed;
  }

  @Override
  protected void initChannel(SocketChannel ch) {
    overlay.track(ch);
    ChannelPipeline p = ch.pipeline();
    OverlayTls tls = overlay.tls();
    if (tls != null) {
      p.addLast(
          "tls",
          dialed == null
              ? tls.server().newHandler(ch.alloc())
              : tls.client().newHandler(ch.alloc(), dialed.getHostString(), dialed.getPort()));
    }
    p.addLast("flush", new FlushConsolidationHandler(256, true));
    p.addLast("frameDecoder", FrameCodec.newFrameDecoder());
    p.addLast("framePrepender", overlay.framePrepender());
    p.addLast("codec", overlay.codec());
    p.addLast("peer", new PeerHandler(overlay, dialedPeer));
  }
}
