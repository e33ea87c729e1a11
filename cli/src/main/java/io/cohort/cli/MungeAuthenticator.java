package io.cohort.cli;

import io.cohort.common.Caller;
import io.cohort.common.CohortException;
import io.cohort.common.GrpcErrors;
import io.cohort.common.ProcessRunner;
import io.grpc.Context;
import io.grpc.Contexts;
import io.grpc.Grpc;
import io.grpc.Metadata;
import io.grpc.ServerCall;
import io.grpc.ServerCallHandler;
import io.grpc.ServerInterceptor;
import io.grpc.StatusRuntimeException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.function.LongSupplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * Who calls the coordinator's client API over TCP: the user that a MUNGE credential in the call's
 * headers names, once munged on this machine has checked it ({@link Munge#verify}); the credential
 * must have been made for this very call (its payload is the method's name, {@link
 * Munge#callPayload}), so that one captured on its way to a read cannot be spent on a kill. A call
 * without a valid one is closed with UNAUTHENTICATED before anything of it runs.
 *
 * <p>{@code unmunge} is a process of a few milliseconds: this runs on the call's executor (gRPC
 * calls interceptors there, never on the transport's event loop; the coordinator's server keeps
 * gRPC's default executor), like the service method that follows it.
 *
 * <p>The caller's uid and gid are the credential's (those of the process that made it, on its
 * machine); the name and supplementary groups are this machine's user database's for that uid, as
 * Slurm takes them: a realm shares one user database. A uid the database does not know is served
 * with no supplementary groups (fewer groups never grant more).
 */
final class MungeAuthenticator implements ServerInterceptor {
  /** How long a user's groups are taken as read (a user added to a group waits that long). */
  static final long GROUPS_TTL_NANOS = TimeUnit.SECONDS.toNanos(60);

  private static final Logger log = LoggerFactory.getLogger(MungeAuthenticator.class);

  private record Groups(List<Integer> gids, long readAt) {}

  private final Munge munge;
  private final PeerIdentity names;
  private final String elsewhere;
  private final LongSupplier nanoClock;
  private final Map<Integer, Groups> groups = new ConcurrentHashMap<>();

  /**
   * @param elsewhere what a caller without a credential may do instead, for the refusal's message
   */
  MungeAuthenticator(Munge munge, PeerIdentity names, String elsewhere, LongSupplier nanoClock) {
    this.munge = munge;
    this.names = names;
    this.elsewhere = elsewhere;
    this.nanoClock = nanoClock;
  }

  @Override
  public <Q, R> ServerCall.Listener<Q> interceptCall(
      ServerCall<Q, R> call, Metadata headers, ServerCallHandler<Q, R> next) {
    Caller caller;
    try {
      caller =
          authenticate(
              headers.get(MungeCredentials.HEADER), call.getMethodDescriptor().getFullMethodName());
    } catch (CohortException e) {
      log.info(
          "refused {} from {}: {}",
          call.getMethodDescriptor().getBareMethodName(),
          call.getAttributes().get(Grpc.TRANSPORT_ATTR_REMOTE_ADDR),
          e.getMessage());
      StatusRuntimeException s = GrpcErrors.toStatus(e);
      call.close(s.getStatus(), s.getTrailers());
      return new ServerCall.Listener<>() {};
    }
    return Contexts.interceptCall(
        Context.current().withValue(Caller.CONTEXT_KEY, caller), call, headers, next);
  }

  /**
   * The caller a call of {@code method} with {@code credential} comes from; UNAUTHENTICATED when
   * the credential is missing, not valid, or made for another call, UNAVAILABLE when munged here
   * cannot check it.
   */
  Caller authenticate(String credential, String method) {
    if (credential == null) {
      throw unauthenticated(
          "the call carries no MUNGE credential; over TCP the coordinator serves only callers "
              + "that prove who they are with one (the cohort CLI sends it when munged runs on "
              + "its machine with the cluster's key); "
              + elsewhere);
    }
    Munge.Verified v;
    try {
      v = munge.verify(credential);
    } catch (Munge.RefusedException e) {
      if (e.refusal == Munge.Refusal.NO_DAEMON) {
        throw new CohortException(CohortException.Kind.UNAVAILABLE, e.getMessage());
      }
      throw unauthenticated("the call's MUNGE credential was refused: " + e.getMessage());
    }
    if (!v.payload().equals(Munge.callPayload(method))) {
      throw unauthenticated(
          "the call's MUNGE credential was made for another call ('"
              + v.payload()
              + "', not '"
              + Munge.callPayload(method)
              + "'); a credential is made for one call");
    }
    String name = names.name(v.uid());
    return new Caller(v.uid(), v.gid(), groups(v.uid(), name), name);
  }

  private static CohortException unauthenticated(String message) {
    return new CohortException(CohortException.Kind.UNAUTHENTICATED, message);
  }

  /** The supplementary groups of {@code user} in the user database, read once a minute at most. */
  private List<Integer> groups(int uid, String user) {
    if (user.isEmpty()) {
      return List.of();
    }
    long now = nanoClock.getAsLong();
    Groups g = groups.get(uid);
    if (g == null || now - g.readAt() > GROUPS_TTL_NANOS) {
      g = new Groups(lookUp(user), now);
      groups.put(uid, g);
    }
    return g.gids();
  }

  /** `id -G USER`: the groups the system's user database gives the user (files, LDAP, ...). */
  static List<Integer> lookUp(String user) {
    ProcessRunner.Result r;
    try {
      r = ProcessRunner.run("id", "-G", "--", user);
    } catch (CohortException e) {
      return List.of();
    }
    List<Integer> out = new ArrayList<>();
    if (r.ok()) {
      for (String w : r.output().split("\\s+")) {
        try {
          out.add(Integer.parseInt(w));
        } catch (NumberFormatException ignored) {
          // not a group number: skip it
        }
      }
    }
    return out;
  }
}
