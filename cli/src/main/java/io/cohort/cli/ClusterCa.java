package io.cohort.cli;

import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.common.DaemonIdentity;
import io.cohort.common.ProcessRunner;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ThreadLocalRandom;
import java.util.regex.Pattern;

/**
 * A cluster's certificate authority and the certificates it issues to the daemons, in one directory
 * ({@code ca.crt}, {@code ca.key}, {@code NAME.crt}, {@code NAME.key}), made with {@code openssl}:
 * P-256 keys, readable by their owner (root) only; certificates readable by all (the CLI of any
 * user trusts {@code ca.crt}). Beside them the cluster's checkpoint key ({@value
 * CheckpointKey#FILE}, root's only), which every daemon holds as it holds its certificate: it is
 * made with the CA and goes wherever a daemon's certificate goes.
 *
 * <p>A daemon's certificate says what it is in its subject ({@code O=cohort, OU=ROLE, CN=NAME}; see
 * {@link DaemonIdentity}) and where it is reached in its subject alternative names (IP addresses
 * and DNS names), which a TLS client checks against the address it dialed.
 */
final class ClusterCa {
  static final String CA_CERT = "ca.crt";
  static final String CA_KEY = "ca.key";

  /** How long the CA and a daemon's certificate are valid. */
  static final int CA_DAYS = 3650;

  static final int CERT_DAYS = 825;

  private static final Pattern ADDRESS = Pattern.compile("[A-Za-z0-9.:_-]+");

  private final Path dir;

  ClusterCa(Path dir) {
    this.dir = dir;
  }

  Path dir() {
    return dir;
  }

  Path caCert() {
    return dir.resolve(CA_CERT);
  }

  static Path cert(Path dir, String name) {
    return dir.resolve(name + ".crt");
  }

  static Path key(Path dir, String name) {
    return dir.resolve(name + ".key");
  }

  Path checkpointKey() {
    return dir.resolve(CheckpointKey.FILE);
  }

  /**
   * Makes the cluster's checkpoint key unless there is one (a CA made before there were keys);
   * never replaces it, since every checkpoint signed with it would then be refused. True if made.
   */
  boolean ensureCheckpointKey() throws IOException {
    Files.createDirectories(dir);
    return CheckpointKey.create(checkpointKey());
  }

  boolean exists() {
    return Files.isRegularFile(caCert()) && Files.isRegularFile(dir.resolve(CA_KEY));
  }

  /** Creates the CA; refuses to replace one (every certificate it issued would stop working). */
  void init() throws IOException {
    if (Files.exists(caCert()) || Files.exists(dir.resolve(CA_KEY))) {
      throw CohortException.precondition(
          "%s already holds a cluster CA; remove %s and %s first to make a new one (every "
              + "certificate of the old one must then be issued again)",
          dir, CA_CERT, CA_KEY);
    }
    Files.createDirectories(dir);
    Files.setPosixFilePermissions(dir, PosixFilePermissions.fromString("rwxr-xr-x"));
    String id = HexFormat.of().formatHex(randomBytes(4));
    openssl(
        "req",
        "-x509",
        "-new",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        dir.resolve(CA_KEY).toString(),
        "-out",
        caCert().toString(),
        "-days",
        Integer.toString(CA_DAYS),
        "-subj",
        "/O=" + DaemonIdentity.ORGANIZATION + "/OU=ca/CN=Cohort cluster CA " + id,
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign");
    restrict(dir.resolve(CA_KEY));
    publish(caCert());
    ensureCheckpointKey();
  }

  /**
   * Issues the certificate of daemon {@code name} ({@code coordinator} or a node's name) in the
   * CA's directory, valid for {@code addresses} (IP addresses or DNS names the daemon is dialed
   * at); replaces an earlier one of the same name.
   */
  void issue(String name, DaemonIdentity.Role role, List<String> addresses) throws IOException {
    issue(name, role, addresses, dir);
  }

  /** As {@link #issue(String, DaemonIdentity.Role, List)}, written into {@code to}. */
  void issue(String name, DaemonIdentity.Role role, List<String> addresses, Path to)
      throws IOException {
    if (!exists()) {
      throw CohortException.precondition(
          "no cluster CA in %s: run `cohort ca init` first (as root)", dir);
    }
    DaemonIdentity.validName(name);
    if (addresses.isEmpty()) {
      throw CohortException.invalid(
          "give the addresses %s is dialed at (--address IP or DNS name, comma-separated)", name);
    }
    List<String> alt = new ArrayList<>();
    for (String a : addresses) {
      if (!ADDRESS.matcher(a).matches()) {
        throw CohortException.invalid("'%s' is not an IP address or a DNS name", a);
      }
      alt.add((a.matches("[0-9.]+") || a.contains(":") ? "IP:" : "DNS:") + a);
    }
    Files.createDirectories(to);
    Path csr = Files.createTempFile(to, name, ".csr");
    Path ext = Files.createTempFile(to, name, ".ext");
    try {
      Files.writeString(
          ext,
          "basicConstraints=critical,CA:FALSE\n"
              + "keyUsage=critical,digitalSignature\n"
              + "extendedKeyUsage=serverAuth,clientAuth\n"
              + "subjectAltName="
              + String.join(",", alt)
              + "\n",
          StandardCharsets.UTF_8);
      Path key = key(to, name);
      Files.deleteIfExists(key); // openssl creates it afresh, readable by its owner only
      openssl(
          "req",
          "-new",
          "-newkey",
          "ec",
          "-pkeyopt",
          "ec_paramgen_curve:prime256v1",
          "-nodes",
          "-keyout",
          key.toString(),
          "-subj",
          new DaemonIdentity(role, name).subject(),
          "-out",
          csr.toString());
      restrict(key);
      openssl(
          "x509",
          "-req",
          "-in",
          csr.toString(),
          "-CA",
          caCert().toString(),
          "-CAkey",
          dir.resolve(CA_KEY).toString(),
          "-set_serial",
          "0x" + HexFormat.of().formatHex(randomBytes(16)),
          "-days",
          Integer.toString(CERT_DAYS),
          "-extfile",
          ext.toString(),
          "-out",
          cert(to, name).toString());
      publish(cert(to, name));
      if (!to.equals(dir)) {
        Files.copy(
            caCert(), to.resolve(CA_CERT), java.nio.file.StandardCopyOption.REPLACE_EXISTING);
        publish(to.resolve(CA_CERT));
        copyCheckpointKey(to);
      }
    } finally {
      Files.deleteIfExists(csr);
      Files.deleteIfExists(ext);
    }
  }

  /** The checkpoint key into a daemon's directory, root's only from its creation. */
  private void copyCheckpointKey(Path to) throws IOException {
    if (!Files.exists(checkpointKey())) {
      throw CohortException.precondition(
          "no checkpoint key in %s (a CA made before there were keys): run `cohort ca key` first",
          dir);
    }
    Path target = to.resolve(CheckpointKey.FILE);
    Files.deleteIfExists(target);
    Files.createFile(
        target, PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
    Files.write(target, Files.readAllBytes(checkpointKey()));
  }

  private static byte[] randomBytes(int n) {
    byte[] b = new byte[n];
    ThreadLocalRandom.current().nextBytes(b);
    b[0] &= 0x7f; // a positive serial number
    return b;
  }

  private static void restrict(Path key) throws IOException {
    Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-------"));
  }

  private static void publish(Path cert) throws IOException {
    Files.setPosixFilePermissions(cert, PosixFilePermissions.fromString("rw-r--r--"));
  }

  private static void openssl(String... args) {
    List<String> cmd = new ArrayList<>(List.of("openssl"));
    cmd.addAll(List.of(args));
    ProcessRunner.Result r = ProcessRunner.run(ProcessRunner.SHORT, Map.of(), cmd);
    if (!r.ok()) {
      throw CohortException.internal(
          "`openssl " + args[0] + "` failed: " + r.output() + " (is openssl installed?)", null);
    }
  }
}
