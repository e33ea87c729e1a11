package io.cohort.drain;

import java.net.InetSocketAddress;

/**
 * The one connection an overlay keeps to a peer node.
 *
 * @param peer the peer's node name
 * @param local this end's address
 * @param remote the peer's end
 * @param dialedByUs whether this node opened the connection
 */
public record ConnectionInfo(
    String peer, InetSocketAddress local, InetSocketAddress remote, boolean dialedByUs) {}
