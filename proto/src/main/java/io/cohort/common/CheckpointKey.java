package io.cohort.common;

import com.google.protobuf.CodedOutputStream;
import com.google.protobuf.Descriptors.FieldDescriptor;
import com.google.protobuf.Message;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import java.util.HexFormat;
import java.util.Set;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The cluster's checkpoint key: 32 random bytes that only the daemons hold (a root-only file in
 * their {@code --tls} directory, {@value #FILE}), with which they authenticate what they write to
 * disk and later act on: the coordinator its checkpoint records, the agents their image manifests.
 * Both name files by their sha256, and a sha256 anyone can recompute; the key is what someone who
 * edits an image, a manifest and a record consistently does not have.
 *
 * <p>A message's MAC is HMAC-SHA256 over its full protobuf type name, a zero byte, and its
 * deterministic binary encoding with its {@value #FIELD} field empty, kept in that field as
 * lower-case hex. The encoding, not the JSON file, is what is authenticated: the same record read
 * back from its JSON has the same encoding (map entries sorted by key), whatever the spacing or
 * field order of the file. The type name keeps a record's MAC from passing for a manifest's.
 */
public final class CheckpointKey {
  /** The key's file name in a daemon's TLS directory. */
  public static final String FILE = "checkpoint.key";

  /** The field that holds a message's MAC (ImageManifest and CheckpointInfo have it). */
  public static final String FIELD = "hmac_sha256";

  static final int BYTES = 32;
  private static final String ALGORITHM = "HmacSHA256";

  private final SecretKeySpec key;

  private CheckpointKey(byte[] bytes) {
    if (bytes.length != BYTES) {
      throw new IllegalArgumentException(
          "a checkpoint key is " + BYTES + " bytes, not " + bytes.length);
    }
    this.key = new SecretKeySpec(bytes, ALGORITHM);
  }

  /** A key of these bytes (tests; a daemon's comes from {@link #load}). */
  public static CheckpointKey of(byte[] bytes) {
    return new CheckpointKey(bytes.clone());
  }

  /** A fresh random key, kept nowhere (tests). */
  public static CheckpointKey random() {
    byte[] b = new byte[BYTES];
    new SecureRandom().nextBytes(b);
    return new CheckpointKey(b);
  }

  /**
   * The key in {@code file}; refused, saying how to make it, when it is missing, of the wrong size,
   * or open to others than its owner (who could read it forges records; who could replace it makes
   * the daemons trust records of their own).
   */
  public static CheckpointKey load(Path file) {
    if (!Files.isRegularFile(file)) {
      throw CohortException.precondition(
          "no %s: the daemons authenticate checkpoint records and image manifests with the "
              + "cluster's checkpoint key; make it with `cohort ca key` (or `cohort ca init`, "
              + "which makes it with a new CA) and copy it (mode 600) into every daemon's "
              + "TLS directory",
          file);
    }
    try {
      Set<PosixFilePermission> perms = Files.getPosixFilePermissions(file);
      if (!perms.stream().allMatch(p -> p.name().startsWith("OWNER_"))) {
        throw CohortException.precondition(
            "%s is open to others than its owner (%s): `chmod 600 %s`; if anyone may have read "
                + "or replaced it, make a new one (every checkpoint taken with the old one is then "
                + "refused)",
            file, PosixFilePermissions.toString(perms), file);
      }
      byte[] bytes = Files.readAllBytes(file);
      if (bytes.length != BYTES) {
        throw CohortException.precondition(
            "%s holds %d bytes, not the %d of a checkpoint key: copy the cluster's key there "
                + "again (the one every daemon has)",
            file, bytes.length, BYTES);
      }
      return new CheckpointKey(bytes);
    } catch (IOException e) {
      throw DurableFiles.failure("cannot read the checkpoint key " + file, e);
    }
  }

  /**
   * The key in {@code file}, made first (random, readable by this process's user only) if there is
   * none. Never replaces a key: every checkpoint taken with it would be refused after.
   */
  public static CheckpointKey loadOrCreate(Path file) {
    if (!Files.exists(file)) {
      create(file);
    }
    return load(file);
  }

  /** Makes a key in {@code file} unless one is there already; true if it made it. */
  public static boolean create(Path file) {
    Path dir = file.toAbsolutePath().getParent();
    Path tmp = null;
    try {
      Files.createDirectories(dir);
      tmp =
          Files.createTempFile(
              dir,
              "." + FILE + ".",
              ".tmp",
              PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString("rw-------")));
      byte[] b = new byte[BYTES];
      new SecureRandom().nextBytes(b);
      Files.write(tmp, b);
      DurableFiles.fsync(tmp);
      try {
        Files.createLink(file, tmp); // atomic, and never replaces a key made meanwhile
      } catch (FileAlreadyExistsException raced) {
        return false;
      }
      DurableFiles.fsyncDirectory(dir);
      return true;
    } catch (IOException e) {
      throw DurableFiles.failure("cannot make the checkpoint key " + file, e);
    } finally {
      try {
        if (tmp != null) {
          Files.deleteIfExists(tmp);
        }
      } catch (IOException ignored) {
        // a stray temporary file of 32 bytes, root's only; the key is what matters
      }
    }
  }

  /** {@code m} with its MAC set. */
  @SuppressWarnings("unchecked") // toBuilder().build() of an M is an M
  public <M extends Message> M sign(M m) {
    return (M) m.toBuilder().setField(field(m), mac(m)).build();
  }

  /** Whether {@code m} carries the MAC this key gives it (compared in constant time). */
  public boolean signed(Message m) {
    String got = (String) m.getField(field(m));
    return MessageDigest.isEqual(
        mac(m).getBytes(StandardCharsets.US_ASCII), got.getBytes(StandardCharsets.US_ASCII));
  }

  /** The MAC of {@code m}, whatever its MAC field holds now. */
  String mac(Message m) {
    Message unsigned = m.toBuilder().clearField(field(m)).build();
    try {
      Mac mac = Mac.getInstance(ALGORITHM);
      mac.init(key);
      mac.update(unsigned.getDescriptorForType().getFullName().getBytes(StandardCharsets.UTF_8));
      mac.update((byte) 0);
      mac.update(deterministic(unsigned));
      return HexFormat.of().formatHex(mac.doFinal());
    } catch (GeneralSecurityException e) {
      throw new IllegalStateException("HMAC-SHA256 is part of every JDK", e);
    }
  }

  private static byte[] deterministic(Message m) {
    ByteArrayOutputStream buf = new ByteArrayOutputStream(m.getSerializedSize());
    CodedOutputStream out = CodedOutputStream.newInstance(buf);
    out.useDeterministicSerialization();
    try {
      m.writeTo(out);
      out.flush();
    } catch (IOException e) {
      throw new IllegalStateException("writing to memory", e);
    }
    return buf.toByteArray();
  }

  private static FieldDescriptor field(Message m) {
    FieldDescriptor f = m.getDescriptorForType().findFieldByName(FIELD);
    if (f == null || f.getJavaType() != FieldDescriptor.JavaType.STRING) {
      throw new IllegalArgumentException(
          m.getDescriptorForType().getFullName() + " has no string field " + FIELD);
    }
    return f;
  }

  @Override
  public String toString() {
    return "checkpoint key"; // never the bytes
  }
}
