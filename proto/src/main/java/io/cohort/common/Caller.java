package io.cohort.common;

import io.cohort.proto.v1.Owner;
import io.grpc.Attributes;
import io.grpc.Context;
import java.util.List;

/**
 * Who is calling a daemon: a user as the kernel knows them. A daemon learns it from the transport
 * only (the peer's credentials on a Unix socket, later a verified MUNGE credential), never from a
 * request body: a {@link CallerInterceptor} puts it in the call's {@link Context}.
 *
 * @param uid the caller's user id
 * @param gid the caller's primary group
 * @param groups the supplementary groups (may be empty when they could not be read)
 * @param user the login name, for messages and records; the numbers are what counts
 */
public record Caller(int uid, int gid, List<Integer> groups, String user) {
  /** Where a transport leaves the caller it authenticated, for {@link CallerInterceptor}. */
  public static final Attributes.Key<Caller> TRANSPORT_ATTR =
      Attributes.Key.create("cohort-caller");

  /** Where a service finds the caller of the current call. */
  public static final Context.Key<Caller> CONTEXT_KEY = Context.key("cohort-caller");

  public Caller {
    groups = List.copyOf(groups);
  }

  /** The superuser: every job is theirs to touch. */
  public static Caller root() {
    return new Caller(0, 0, List.of(), "root");
  }

  public boolean isRoot() {
    return uid == 0;
  }

  /**
   * The caller of the current call; a call that reached a service without one is refused (a server
   * built without a {@link CallerInterceptor} must not serve anyone as root by mistake).
   */
  public static Caller current() {
    Caller c = CONTEXT_KEY.get();
    if (c == null) {
      throw new CohortException(
          CohortException.Kind.UNAUTHENTICATED, "the call carries no caller identity");
    }
    return c;
  }

  /** The owner a job started by this caller records. */
  public Owner toOwner() {
    return Owner.newBuilder().setUid(uid).setGid(gid).addAllGroups(groups).setUser(user).build();
  }

  /**
   * Whether this caller may touch what {@code owner} owns: its owner or root. A record without an
   * owner (made before owners were recorded) reads as uid 0, root's, as those jobs were.
   */
  public boolean mayTouch(Owner owner) {
    return isRoot() || owner.getUid() == uid;
  }

  /**
   * Whether two owners are the same credentials: uid, gid and supplementary groups (in any order);
   * the login name is only a label.
   */
  public static boolean sameCredentials(Owner a, Owner b) {
    return a.getUid() == b.getUid()
        && a.getGid() == b.getGid()
        && a.getGroupsList().stream()
            .sorted()
            .toList()
            .equals(b.getGroupsList().stream().sorted().toList());
  }

  /** "alice", or "uid 1234" for a user the user database does not name. */
  public static String name(Owner owner) {
    if (!owner.getUser().isEmpty()) {
      return owner.getUser();
    }
    return owner.getUid() == 0 ? "root" : "uid " + owner.getUid();
  }

  /** The caller's name for messages: "alice", or "uid 1234" for a user the database lacks. */
  public String who() {
    return user.isEmpty() ? "uid " + uid : user;
  }

  @Override
  public String toString() {
    return user.isEmpty() ? "uid " + uid : user + " (uid " + uid + ")";
  }
}
