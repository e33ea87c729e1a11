package io.cohort.drain;

import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.ChannelInboundHandlerAdapter;
import io.netty.handler.ssl.SslHandler;
import io.netty.util.AttributeKey;
import io.netty.util.ReferenceCountUtil;
import io.netty.util.concurrent.ScheduledFuture;
import java.io.IOException;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Optional;
import java.util.concurrent.TimeUnit;
import javax.net.ssl.SSLException;
import javax.net.ssl.SSLPeerUnverifiedException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The logic end of an overlay channel: the handshake, then PACKET and MARKER frames handed to the
 * job they belong to. One per channel (it holds the handshake state), so not sharable; its state
 * lives on the channel's event loop.
 *
 * <p>The dialer sends HELLO as soon as the channel is active; the acceptor's reply (or refusal)
 * comes from {@link PeerConnection}. A frame other than HELLO before HELLO, a second HELLO, a HELLO
 * from ourselves or from a node other than the one dialed, a HELLO from a node other than the one
 * the peer's TLS certificate names (when the overlay has TLS), or no HELLO within the handshake
 * timeout closes the channel with a logged reason.
 */
final class PeerHandler extends ChannelInboundHandlerAdapter {

  private static final Logger log = LoggerFactory.getLogger(PeerHandler.class);

  /** The peer's node name, once its HELLO arrived (read by the codec for its log lines). */
  static final AttributeKey<String> PEER = AttributeKey.valueOf("cohort.drain.peer");

  private final Overlay overlay;
  private final String dialedPeer;
  private String peer;
  private ScheduledFuture<?> handshakeTimeout;

  /**
   * @param dialedPeer the node this channel was dialed to, or null for an accepted channel
   */
  PeerHandler(Overlay overlay, String dialedPeer) {
    this.overlay = overlay;
    this.dialedPeer = dialedPeer;
  }

  @Override
  public void channelActive(ChannelHandlerContext ctx) {
    long timeout = overlay.config().handshakeTimeout().toMillis();
    handshakeTimeout =
        ctx.executor()
            .schedule(
                () -> {
                  log.warn(
                      "{} closing connection {}: no HELLO within {} ms",
                      overlay.who(),
                      ctx.channel().remoteAddress(),
                      timeout);
                  ctx.close();
                },
                timeout,
                TimeUnit.MILLISECONDS);
    if (dialedPeer != null) {
      ctx.writeAndFlush(overlay.hello(), ctx.voidPromise());
    }
    ctx.fireChannelActive();
  }

  @Override
  public void channelRead(ChannelHandlerContext ctx, Object msg) {
    if (msg instanceof Frame.Hello hello) {
      onHello(ctx, hello);
    } else if (peer == null) {
      ReferenceCountUtil.release(msg);
      protocolError(ctx, msg.getClass().getSimpleName() + " before HELLO");
    } else if (msg instanceof Frame.Packet packet) {
      overlay.onPacket(peer, packet);
    } else if (msg instanceof Frame.Marker marker) {
      overlay.onMarker(peer, marker);
    } else {
      ReferenceCountUtil.release(msg);
      protocolError(ctx, "unexpected message " + msg);
    }
  }

  private void onHello(ChannelHandlerContext ctx, Frame.Hello hello) {
    String name = hello.nodeName();
    if (peer != null) {
      protocolError(ctx, "second HELLO (from " + name + ")");
    } else if (name.equals(overlay.nodeName())) {
      protocolError(ctx, "HELLO from a node with our own name");
    } else if (dialedPeer != null && !dialedPeer.equals(name)) {
      protocolError(ctx, "dialed " + dialedPeer + " but " + name + " answered");
    } else if (!certifiedAs(ctx, name)) {
      protocolError(
          ctx,
          "HELLO from "
              + name
              + " but its certificate names "
              + certified(ctx).orElse("no node of the cluster"));
    } else {
      peer = name;
      ctx.channel().attr(PEER).set(name);
      cancelTimeout();
      overlay.peer(name).onHello(ctx.channel(), dialedPeer != null, hello.incarnation());
    }
  }

  /** Whether the peer may call itself {@code name}: always on plain TCP, else its certificate's. */
  private boolean certifiedAs(ChannelHandlerContext ctx, String name) {
    return overlay.tls() == null || certified(ctx).equals(Optional.of(name));
  }

  /** The node the peer's verified certificate names (the handshake is over once frames flow). */
  private Optional<String> certified(ChannelHandlerContext ctx) {
    SslHandler ssl = ctx.pipeline().get(SslHandler.class);
    try {
      Certificate[] chain = ssl.engine().getSession().getPeerCertificates();
      return chain.length > 0 && chain[0] instanceof X509Certificate leaf
          ? overlay.tls().nodeOf().apply(leaf)
          : Optional.empty();
    } catch (SSLPeerUnverifiedException e) {
      return Optional.empty();
    }
  }

  @Override
  public void channelWritabilityChanged(ChannelHandlerContext ctx) {
    if (peer != null && ctx.channel().isWritable()) {
      overlay.peer(peer).onWritable(ctx.channel());
    }
    ctx.fireChannelWritabilityChanged();
  }

  @Override
  public void channelInactive(ChannelHandlerContext ctx) {
    cancelTimeout();
    ctx.fireChannelInactive();
  }

  @Override
  public void exceptionCaught(ChannelHandlerContext ctx, Throwable cause) {
    String with = peer != null ? peer : String.valueOf(ctx.channel().remoteAddress());
    if (cause instanceof IOException || cause.getCause() instanceof SSLException) {
      // includes a TLS handshake refused (no certificate, another CA): the peer is told by TLS
      log.info("{} connection with {} failed: {}", overlay.who(), with, cause.getMessage());
    } else {
      log.warn("{} closing connection with {}: {}", overlay.who(), with, cause.toString(), cause);
    }
    ctx.close();
  }

  private void protocolError(ChannelHandlerContext ctx, String reason) {
    log.warn(
        "{} closing connection {} ({}): protocol error: {}",
        overlay.who(),
        ctx.channel().remoteAddress(),
        peer == null ? "before HELLO" : peer,
        reason);
    ctx.close();
  }

  private void cancelTimeout() {
    if (handshakeTimeout != null) {
      handshakeTimeout.cancel(false);
      handshakeTimeout = null;
    }
  }
}
