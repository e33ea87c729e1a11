package io.cohort.common;

import io.grpc.Context;
import java.security.cert.X509Certificate;
import java.util.Optional;
import javax.naming.InvalidNameException;
import javax.naming.ldap.LdapName;
import javax.naming.ldap.Rdn;

/**
 * A daemon of the cluster as its certificate names it: the subject {@code O=cohort, OU=ROLE,
 * CN=NAME} of a certificate issued by the cluster's CA ({@code cohort ca issue}). Only the TLS
 * handshake vouches for it (the certificate chains to the cluster CA, which alone the daemons
 * trust); a daemon never takes a peer's name from a request.
 *
 * @param role what the daemon is
 * @param name "coordinator", or the node's name for an agent
 */
public record DaemonIdentity(Role role, String name) {
  /** The organization of every daemon certificate's subject. */
  public static final String ORGANIZATION = "cohort";

  /** Where a service finds the daemon calling it (set by {@link DaemonPeerCheck}). */
  public static final Context.Key<DaemonIdentity> CONTEXT_KEY = Context.key("cohort-daemon");

  /** What a daemon is; the certificate's OU. */
  public enum Role {
    COORDINATOR,
    AGENT;

    public String ou() {
      return name().toLowerCase(java.util.Locale.ROOT);
    }
  }

  public DaemonIdentity {
    validName(name);
  }

  /** Refuses a name that cannot be a certificate's CN and a file name. */
  public static void validName(String name) {
    if (name == null || !name.matches("[A-Za-z0-9][A-Za-z0-9._-]{0,62}")) {
      throw CohortException.invalid(
          "'%s' cannot name a daemon: letters, digits, '.', '_', '-', at most 63", name);
    }
  }

  /** The subject to put in this daemon's certificate request, in openssl's form. */
  public String subject() {
    return "/O=" + ORGANIZATION + "/OU=" + role.ou() + "/CN=" + name;
  }

  /**
   * The daemon {@code cert} names, or empty when its subject is not a daemon's (another
   * organization, no role or name). The caller must already have checked that it chains to the
   * cluster CA: the TLS handshake did.
   */
  public static Optional<DaemonIdentity> of(X509Certificate cert) {
    String o = null;
    String ou = null;
    String cn = null;
    try {
      for (Rdn rdn : new LdapName(cert.getSubjectX500Principal().getName()).getRdns()) {
        String v = String.valueOf(rdn.getValue());
        switch (rdn.getType().toUpperCase(java.util.Locale.ROOT)) {
          case "O" -> o = v;
          case "OU" -> ou = v;
          case "CN" -> cn = v;
          default -> {}
        }
      }
    } catch (InvalidNameException e) {
      return Optional.empty();
    }
    if (!ORGANIZATION.equals(o) || ou == null || cn == null) {
      return Optional.empty();
    }
    for (Role r : Role.values()) {
      if (r.ou().equals(ou)) {
        try {
          return Optional.of(new DaemonIdentity(r, cn));
        } catch (CohortException badName) {
          return Optional.empty();
        }
      }
    }
    return Optional.empty();
  }

  @Override
  public String toString() {
    return role.ou() + " " + name;
  }
}
