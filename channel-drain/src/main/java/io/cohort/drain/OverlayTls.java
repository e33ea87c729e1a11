package io.cohort.drain;

import io.netty.handler.ssl.SslContext;
import java.security.cert.X509Certificate;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Function;

/**
 * Mutual TLS for the overlay's connections: each side presents its node's certificate and accepts
 * only a peer whose certificate chains to the cluster's CA (the contexts trust nothing else) and
 * names the node its HELLO says it is. A peer without such a certificate is closed in the TLS
 * handshake, before any frame is read.
 *
 * @param server the context of accepted connections; must require a client certificate
 * @param client the context of dialed connections, with this node's certificate
 * @param nodeOf the node a verified peer certificate names (empty if it names no node's agent)
 */
public record OverlayTls(
    SslContext server, SslContext client, Function<X509Certificate, Optional<String>> nodeOf) {
  public OverlayTls {
    Objects.requireNonNull(server, "server");
    Objects.requireNonNull(client, "client");
    Objects.requireNonNull(nodeOf, "nodeOf");
    if (!server.isServer() || !client.isClient()) {
      throw new IllegalArgumentException("OverlayTls takes a server and a client context");
    }
  }
}
