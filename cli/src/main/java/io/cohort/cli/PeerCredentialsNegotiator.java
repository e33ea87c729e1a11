package io.cohort.cli;

import io.cohort.common.Caller;
import io.grpc.Attributes;
import io.grpc.ChannelLogger;
import io.grpc.netty.GrpcHttp2ConnectionHandler;
import io.grpc.netty.InternalProtocolNegotiationEvent;
import io.grpc.netty.InternalProtocolNegotiator;
import io.grpc.netty.InternalProtocolNegotiators;
import io.netty.channel.ChannelHandler;
import io.netty.channel.ChannelHandlerContext;
import io.netty.channel.epoll.EpollDomainSocketChannel;
import io.netty.util.AsciiString;
import java.io.IOException;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The plain-text negotiation of gRPC's Netty server, preceded by one step: take the peer's
 * credentials from the kernel (SO_PEERCRED) and leave the {@link Caller} in the transport's
 * attributes ({@link Caller#TRANSPORT_ATTR}), where {@link io.cohort.common.CallerInterceptor}
 * finds it for every call on the connection.
 *
 * <p>Why a protocol negotiator: gRPC hands a {@code ServerInterceptor} the transport's attributes
 * and nothing of the Netty channel (grpc-java issue 2646), and the negotiation is the one place
 * where a server sets those attributes with the channel in hand (its TLS negotiator records the SSL
 * session there). The alternatives are worse: the peer's address, which the built-in negotiator
 * records, is empty for an accepted Unix socket, and both epoll channel classes are final. The
 * hooks used here ({@code Internal*} in grpc-netty) are the ones gRPC's own security modules build
 * on; they are pinned with grpc-java's version, and {@code PeerCredentialsTest} fails if an upgrade
 * moves them.
 */
final class PeerCredentialsNegotiator implements InternalProtocolNegotiator.ProtocolNegotiator {
  private static final Logger log = LoggerFactory.getLogger(PeerCredentialsNegotiator.class);
  private final InternalProtocolNegotiator.ProtocolNegotiator plaintext =
      InternalProtocolNegotiators.serverPlaintext();
  private final PeerIdentity identities;

  PeerCredentialsNegotiator(PeerIdentity identities) {
    this.identities = identities;
  }

  @Override
  public AsciiString scheme() {
    return plaintext.scheme();
  }

  @Override
  public ChannelHandler newHandler(GrpcHttp2ConnectionHandler grpcHandler) {
    return new Handler(plaintext.newHandler(grpcHandler), grpcHandler.getNegotiationLogger());
  }

  @Override
  public void close() {
    plaintext.close();
  }

  /** Runs once per connection, on its event loop, before any call on it is read. */
  private final class Handler extends InternalProtocolNegotiators.ProtocolNegotiationHandler {
    Handler(ChannelHandler next, ChannelLogger negotiationLogger) {
      super(next, negotiationLogger);
    }

    @Override
    protected void protocolNegotiationEventTriggered(ChannelHandlerContext ctx) {
      Caller caller;
      try {
        caller = identities.of(((EpollDomainSocketChannel) ctx.channel()).peerCredentials());
      } catch (IOException | ClassCastException e) {
        // No identity, no calls: the connection is closed before gRPC reads anything.
        log.warn("cannot read the credentials of a client on the socket, closing it: {}", e);
        ctx.close();
        return;
      }
      Attributes attrs =
          InternalProtocolNegotiationEvent.getAttributes(getProtocolNegotiationEvent()).toBuilder()
              .set(Caller.TRANSPORT_ATTR, caller)
              .build();
      replaceProtocolNegotiationEvent(
          InternalProtocolNegotiationEvent.withAttributes(getProtocolNegotiationEvent(), attrs));
      fireProtocolNegotiationEvent(ctx);
    }
  }
}
