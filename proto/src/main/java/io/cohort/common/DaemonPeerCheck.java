package io.cohort.common;

import io.cohort.proto.v1.AgentGrpc;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.Status;
import java.security.cert.Certificate;
import java.security.cert.X509Certificate;
import java.util.Optional;
import java.util.function.BiPredicate;
import javax.net.ssl.SSLPeerUnverifiedException;
import javax.net.ssl.SSLSession;

/**
 * Serves a call on a daemon-to-daemon port only to a daemon of the cluster allowed to make it, and
 * puts that daemon in the call's {@link Context} ({@link DaemonIdentity#CONTEXT_KEY}).
 *
 * <p>The port's mutual TLS has already refused any peer without a certificate of the cluster's CA
 * before a call could start; this adds what the handshake cannot: the certificate must name a
 * daemon ({@link DaemonIdentity}) whose role may call this method (an agent may fetch another
 * agent's images, only the coordinator may run or end vhosts). A call without a verified TLS
 * session (a server built without TLS by mistake) is refused too, never served as anyone.
 */
public final class DaemonPeerCheck implements ServerInterceptor {
  private final String port;
  private final BiPredicate<DaemonIdentity, String> allowed;

  /**
   * @param port what the port serves, for messages ("the coordinator's agent port")
   * @param allowed whether a daemon may call a method (its full name, "cohort.v1.Agent/GetNode")
   */
  public DaemonPeerCheck(String port, BiPredicate<DaemonIdentity, String> allowed) {
    this.port = port;
    this.allowed = allowed;
  }

  /**
   * The coordinator's registry: agents only (each heartbeats for the node its certificate names).
   */
  public static DaemonPeerCheck registry() {
    return new DaemonPeerCheck(
        "the coordinator's agent port", (d, m) -> d.role() == DaemonIdentity.Role.AGENT);
  }

  /** An agent's service: the coordinator, and other agents only to fetch an image. */
  public static DaemonPeerCheck agentService() {
    String export = AgentGrpc.getExportImageMethod().getFullMethodName();
    return new DaemonPeerCheck(
        "an agent's port",
        (d, m) ->
            d.role() == DaemonIdentity.Role.COORDINATOR
                || (d.role() == DaemonIdentity.Role.AGENT && m.equals(export)));
  }

  @Override
  public <Q, A> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, A> call, Metadata headers, ServerCallHandler<Q, A> next) {
    String method = call.getMethodDescriptor().getFullMethodName();
    Optional<DaemonIdentity> peer = peer(call.getAttributes().get(Grpc.TRANSPORT_ATTR_SSL_SESSION));
    if (peer.isEmpty()) {
      call.close(
          Status.UNAUTHENTICATED.withDescription(
              port + " serves only the cluster's daemons, each with its certificate"),
          new Metadata());
      return new ServerCall.Listener<>() {};
    }
    if (!allowed.test(peer.get(), method)) {
      call.close(
          Status.PERMISSION_DENIED.withDescription(
              peer.get() + " may not call " + method + " on " + port),
          new Metadata());
      return new ServerCall.Listener<>() {};
    }
    return Contexts.interceptCall(
        Context.current().withValue(DaemonIdentity.CONTEXT_KEY, peer.get()), call, headers, next);
  }

  /** The daemon a verified TLS session's peer certificate names, if any. */
  static Optional<DaemonIdentity> peer(SSLSession session) {
    if (session == null) {
      return Optional.empty();
    }
    try {
      Certificate[] chain = session.getPeerCertificates();
      if (chain.length == 0 || !(chain[0] instanceof X509Certificate leaf)) {
        return Optional.empty();
      }
      return DaemonIdentity.of(leaf);
    } catch (SSLPeerUnverifiedException e) {
      return Optional.empty();
    }
  }

  /**
   * Refuses a request about {@code node} from a daemon whose certificate names another node: an
   * agent speaks for its own node only. Calls without a daemon in their context (the embedded
   * mode's in-process transport) pass.
   */
  public static void requireNode(String node) {
    DaemonIdentity d = DaemonIdentity.CONTEXT_KEY.get();
    if (d != null && d.role() == DaemonIdentity.Role.AGENT && !d.name().equals(node)) {
      throw CohortException.denied(
          "the agent of node %s may not speak for node %s (its certificate names %s)",
          d.name(), node, d.name());
    }
  }
}
