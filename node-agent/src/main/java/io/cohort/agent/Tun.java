package io.cohort.agent;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * A TUN device (layer 3, no packet-info header) opened through /dev/net/tun with JNA: the
 * node's door between its vhosts' routes and the overlay. read() blocks; one reader thread.
 */
final class Tun implements AutoCloseable {
  private interface C extends Library {
    C LIB = Native.load("c", C.class);

    int open(String path, int flags) throws LastErrorException;

    int ioctl(int fd, long request, Memory arg) throws LastErrorException;

    long read(int fd, byte[] buf, long count) throws LastErrorException;

    long write(int fd, byte[] buf, long count) throws LastErrorException;

    int close(int fd) throws LastErrorException;
  }

  private static final int O_RDWR = 2;
  private static final long TUNSETIFF = 0x400454caL;
  private static final short IFF_TUN = 0x0001;
  private static final short IFF_NO_PI = 0x1000;

  private final int fd;
  private final String name;

  private Tun(int fd, String name) {
    this.fd = fd;
    this.name = name;
  }

  /** Creates (or attaches to) the TUN device {@code name} in this process's network namespace. */
  static Tun open(String name) throws IOException {
    try {
      int fd = C.LIB.open("/dev/net/tun", O_RDWR);
      Memory ifr = new Memory(40);
      ifr.clear();
      byte[] n = name.getBytes(StandardCharsets.US_ASCII);
      ifr.write(0, n, 0, Math.min(n.length, 15));
      ifr.setShort(16, (short) (IFF_TUN | IFF_NO_PI));
      try {
        C.LIB.ioctl(fd, TUNSETIFF, ifr);
      } catch (LastErrorException e) {
        C.LIB.close(fd);
        throw e;
      }
      return new Tun(fd, name);
    } catch (LastErrorException e) {
      throw new IOException("cannot open TUN device " + name + " (errno " + e.getErrorCode()
          + ")", e);
    }
  }

  String name() {
    return name;
  }

  /** Reads one packet into {@code buf}; returns its length (blocks until one comes). */
  int read(byte[] buf) throws IOException {
    try {
      return (int) C.LIB.read(fd, buf, buf.length);
    } catch (LastErrorException e) {
      throw new IOException("read from " + name + " failed (errno " + e.getErrorCode() + ")", e);
    }
  }

  /** Writes one packet (delivered to the node's routing as if it arrived on the device). */
  void write(byte[] packet, int length) throws IOException {
    try {
      C.LIB.write(fd, packet, length);
    } catch (LastErrorException e) {
      throw new IOException("write to " + name + " failed (errno " + e.getErrorCode() + ")", e);
    }
  }

  @Override
  public void close() {
    try {
      C.LIB.close(fd);
    } catch (LastErrorException ignored) {
      // already closed
    }
  }
}
