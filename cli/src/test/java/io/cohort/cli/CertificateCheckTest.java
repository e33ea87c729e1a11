package io.cohort.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.cohort.common.CheckpointKey;
import io.cohort.common.DaemonIdentity;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.time.Instant;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** `cohort doctor`'s certificate checks, on certificates made by {@link ClusterCa} (openssl). */
class CertificateCheckTest {
  @TempDir Path tmp;

  private Path cluster() throws Exception {
    Path dir = tmp.resolve("tls");
    ClusterCa ca = new ClusterCa(dir);
    ca.init();
    ca.issue("coordinator", DaemonIdentity.Role.COORDINATOR, List.of("127.0.0.1"));
    ca.issue("n1", DaemonIdentity.Role.AGENT, List.of("198.18.0.11", "n1"));
    ca.issue("n2", DaemonIdentity.Role.AGENT, List.of("198.18.0.12"));
    return dir;
  }

  private static CertificateCheck.Finding finding(List<CertificateCheck.Finding> all, String name) {
    return all.stream().filter(f -> f.name().equals(name)).findFirst().orElseThrow();
  }

  @Test
  void aFreshClusterPasses() throws Exception {
    List<CertificateCheck.Finding> all = CertificateCheck.check(cluster(), Instant.now());
    // the CA, its key, the checkpoint key, and a certificate and a key per daemon
    assertEquals(3 + 2 * 3, all.size(), all.toString());
    all.forEach(f -> assertTrue(f.ok(), f.toString()));
    assertTrue(finding(all, "cert n1").detail().contains("agent n1"));
  }

  @Test
  void whatIsWrongIsNamed() throws Exception {
    Path dir = cluster();
    // n1's key readable by all; n2's key replaced by another's; a stranger's certificate.
    Files.setPosixFilePermissions(
        dir.resolve("n1.key"), PosixFilePermissions.fromString("rw-r--r--"));
    Files.copy(dir.resolve("n1.key"), dir.resolve("n2.key"), StandardCopyOption.REPLACE_EXISTING);
    ClusterCa other = new ClusterCa(tmp.resolve("other"));
    other.init();
    other.issue("n3", DaemonIdentity.Role.AGENT, List.of("198.18.0.13"), dir.resolve("x"));
    Files.copy(dir.resolve("x/n3.crt"), dir.resolve("n3.crt"));
    Files.copy(dir.resolve("x/n3.key"), dir.resolve("n3.key"));
    List<CertificateCheck.Finding> all = CertificateCheck.check(dir, Instant.now());
    assertFalse(finding(all, "key n1").ok());
    assertTrue(finding(all, "key n1").fix().contains("chmod 600"));
    assertFalse(finding(all, "cert n2").ok());
    assertTrue(finding(all, "cert n2").detail().contains("not this certificate's key"));
    CertificateCheck.Finding n3 = finding(all, "cert n3");
    assertFalse(n3.ok());
    assertTrue(n3.detail().toLowerCase().contains("signature"), n3.detail());
    assertTrue(finding(all, "cert coordinator").ok());
  }

  /**
   * The checkpoint key is made with the CA, kept by a second `ca key`, goes with every daemon's
   * certificate (`issue --out`), and doctor names it when missing or open to others; a directory
   * with the key alone (the embedded mode's) is checked for the key only.
   */
  @Test
  void theCheckpointKeyGoesWithTheCertificatesAndDoctorChecksIt() throws Exception {
    Path dir = cluster();
    Path key = dir.resolve(CheckpointKey.FILE);
    byte[] made = Files.readAllBytes(key);
    assertFalse(new ClusterCa(dir).ensureCheckpointKey(), "kept");
    new ClusterCa(dir)
        .issue("n4", DaemonIdentity.Role.AGENT, List.of("198.18.0.14"), tmp.resolve("n4"));
    Path copy = tmp.resolve("n4").resolve(CheckpointKey.FILE);
    assertTrue(java.util.Arrays.equals(made, Files.readAllBytes(copy)));
    assertEquals("rw-------", PosixFilePermissions.toString(Files.getPosixFilePermissions(copy)));
    assertTrue(finding(CertificateCheck.check(dir, Instant.now()), "checkpoint key").ok());

    Files.setPosixFilePermissions(key, PosixFilePermissions.fromString("rw-r--r--"));
    assertFalse(finding(CertificateCheck.check(dir, Instant.now()), "checkpoint key").ok());
    Files.delete(key);
    CertificateCheck.Finding missing =
        finding(CertificateCheck.check(dir, Instant.now()), "checkpoint key");
    assertFalse(missing.ok());
    assertTrue(missing.fix().contains("cohort ca key"), missing.fix());

    Path embedded = tmp.resolve("home/tls");
    CheckpointKey.loadOrCreate(embedded.resolve(CheckpointKey.FILE));
    List<CertificateCheck.Finding> alone = CertificateCheck.check(embedded, Instant.now());
    assertEquals(1, alone.size(), alone.toString());
    assertTrue(alone.get(0).ok(), alone.toString());
  }

  @Test
  void aCertificateAboutToExpireFails() throws Exception {
    Instant late = Instant.now().plus(Duration.ofDays(ClusterCa.CERT_DAYS - 10));
    CertificateCheck.Finding n1 = finding(CertificateCheck.check(cluster(), late), "cert n1");
    assertFalse(n1.ok());
    assertTrue(n1.detail().startsWith("expires"), n1.detail());
    assertTrue(n1.fix().contains("cohort ca issue n1"));
  }
}
