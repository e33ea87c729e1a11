package io.cohort.cli;

import io.cohort.common.CheckpointKey;
import io.cohort.common.CohortException;
import io.cohort.common.DaemonIdentity;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.security.GeneralSecurityException;
import java.security.KeyFactory;
import java.security.PrivateKey;
import java.security.Signature;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;
import java.security.spec.PKCS8EncodedKeySpec;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * What `cohort doctor` checks of a directory of cluster certificates ({@link ClusterCa}): the CA's
 * certificate is there and valid; every daemon certificate is within its dates, signed by that CA,
 * names a daemon, and has its key beside it, matching it and readable by root only; the cluster's
 * checkpoint key is there, root's only. A directory with the checkpoint key alone is the embedded
 * mode's (it makes its key there): only the key is checked.
 */
final class CertificateCheck {
  /** A certificate that expires sooner than this is reported as a failure, to be issued again. */
  static final Duration RENEW_BEFORE = Duration.ofDays(30);

  /** One finding, as doctor prints it. */
  record Finding(String name, boolean ok, String detail, String fix) {}

  private CertificateCheck() {}

  static List<Finding> check(Path dir, Instant now) {
    List<Finding> out = new ArrayList<>();
    Path caPath = dir.resolve(ClusterCa.CA_CERT);
    Path checkpointKey = dir.resolve(CheckpointKey.FILE);
    if (!Files.exists(caPath) && Files.exists(checkpointKey)) {
      out.add(checkpointKey(checkpointKey));
      return out;
    }
    X509Certificate ca;
    try {
      ca = read(caPath);
      ca.checkValidity(java.util.Date.from(now));
      ca.verify(ca.getPublicKey());
      if (ca.getBasicConstraints() < 0) {
        throw new GeneralSecurityException("not a CA certificate");
      }
      out.add(
          new Finding(
              "cluster ca", true, caPath + ", valid until " + ca.getNotAfter().toInstant(), ""));
    } catch (IOException | GeneralSecurityException e) {
      out.add(
          new Finding(
              "cluster ca",
              false,
              caPath + ": " + e.getMessage(),
              "`cohort ca init` makes the cluster CA (then issue every daemon's certificate again)"));
      return out;
    }
    Path caKey = dir.resolve(ClusterCa.CA_KEY);
    if (Files.exists(caKey)) {
      out.add(keyPermissions("cluster ca key", caKey));
    }
    out.add(checkpointKey(checkpointKey));
    try (Stream<Path> files = Files.list(dir)) {
      for (Path cert :
          files
              .filter(p -> p.getFileName().toString().endsWith(".crt"))
              .filter(p -> !p.equals(caPath))
              .sorted()
              .toList()) {
        out.add(daemon(cert, ca, now));
        String name = cert.getFileName().toString().replaceFirst("\\.crt$", "");
        Path key = ClusterCa.key(dir, name);
        if (Files.exists(key)) {
          out.add(keyPermissions("key " + name, key));
        }
      }
    } catch (IOException e) {
      out.add(new Finding("certificates", false, "cannot list " + dir + ": " + e, "check " + dir));
    }
    return out;
  }

  private static Finding daemon(Path certPath, X509Certificate ca, Instant now) {
    String name = certPath.getFileName().toString().replaceFirst("\\.crt$", "");
    String label = "cert " + name;
    String reissue =
        "`cohort ca issue " + name + " --address ADDR` (on the CA's machine), then restart it";
    try {
      X509Certificate cert = read(certPath);
      cert.verify(ca.getPublicKey());
      cert.checkValidity(java.util.Date.from(now));
      Instant until = cert.getNotAfter().toInstant();
      if (until.isBefore(now.plus(RENEW_BEFORE))) {
        return new Finding(label, false, "expires " + until, reissue);
      }
      var who = DaemonIdentity.of(cert);
      if (who.isEmpty() || !who.get().name().equals(name)) {
        return new Finding(
            label,
            false,
            certPath + " names " + cert.getSubjectX500Principal() + ", not the daemon " + name,
            reissue);
      }
      Path key = ClusterCa.key(certPath.getParent(), name);
      if (!Files.exists(key)) {
        return new Finding(label, false, "no key " + key + " beside it", reissue);
      }
      if (!matches(cert, key)) {
        return new Finding(label, false, key + " is not this certificate's key", reissue);
      }
      String what = who.get().role().ou().equals(name) ? name : who.get().toString();
      return new Finding(
          label, true, what + ", signed by the cluster CA, valid until " + until, "");
    } catch (IOException | GeneralSecurityException e) {
      return new Finding(label, false, certPath + ": " + e.getMessage(), reissue);
    }
  }

  private static Finding checkpointKey(Path key) {
    String label = "checkpoint key";
    if (!Files.exists(key)) {
      return new Finding(
          label,
          false,
          "no " + key + ": the daemons refuse to start without it",
          "`cohort ca key --dir "
              + key.getParent()
              + "` on the CA's machine, then copy it (mode 600) into every daemon's TLS "
              + "directory");
    }
    Finding perms = keyPermissions(label, key);
    if (!perms.ok()) {
      return perms;
    }
    try {
      CheckpointKey.load(key);
      return new Finding(label, true, key + ", root's only", "");
    } catch (CohortException e) {
      return new Finding(label, false, e.getMessage(), "copy the cluster's checkpoint key there");
    }
  }

  private static Finding keyPermissions(String label, Path key) {
    try {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(key);
      String owner = Files.getOwner(key).getName();
      boolean ok =
          owner.equals("root")
              && perms.stream()
                  .allMatch(
                      p ->
                          p == PosixFilePermission.OWNER_READ
                              || p == PosixFilePermission.OWNER_WRITE);
      return new Finding(
          label,
          ok,
          key
              + " owned by "
              + owner
              + ", "
              + java.nio.file.attribute.PosixFilePermissions.toString(perms),
          "`chown root "
              + key
              + " && chmod 600 "
              + key
              + "`, and issue it again if someone may "
              + "have read it");
    } catch (IOException e) {
      return new Finding(label, false, key + ": " + e, "check " + key);
    }
  }

  private static X509Certificate read(Path p) throws IOException, GeneralSecurityException {
    try (InputStream in = Files.newInputStream(p)) {
      return (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
    }
  }

  /** Whether {@code key} (PKCS#8 PEM, as openssl writes it) signs what the certificate verifies. */
  private static boolean matches(X509Certificate cert, Path key)
      throws IOException, GeneralSecurityException {
    String pem = Files.readString(key, StandardCharsets.US_ASCII);
    String body = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    PrivateKey priv =
        KeyFactory.getInstance(cert.getPublicKey().getAlgorithm())
            .generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(body)));
    byte[] probe = "cohort doctor".getBytes(StandardCharsets.US_ASCII);
    Signature sign = Signature.getInstance("SHA256with" + algorithm(priv));
    sign.initSign(priv);
    sign.update(probe);
    byte[] sig = sign.sign();
    Signature verify = Signature.getInstance("SHA256with" + algorithm(priv));
    verify.initVerify(cert.getPublicKey());
    verify.update(probe);
    return verify.verify(sig);
  }

  private static String algorithm(PrivateKey k) {
    return k.getAlgorithm().equals("EC") ? "ECDSA" : k.getAlgorithm();
  }
}
