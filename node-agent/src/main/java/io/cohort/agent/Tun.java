package io.cohort.agent;

import com.sun.jna.LastErrorException;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import io.netty.buffer.ByteBuf;
import io.netty.buffer.ByteBufUtil;
import java.io.IOException;
import java.nio.charset.StandardCharsets;

/**
 * A TUN device (layer 3, no packet-info header) opened through /dev/net/tun with JNA: the node's
 * door between its vhosts' routes and the overlay. read() blocks; one reader thread. Every
 * forwarded packet passes here twice, so packets move between the kernel and Netty's native buffers
 * directly (JNA direct mapping, no Java arrays in between).
 */
final class Tun implements AutoCloseable {
  private static final class C {
    static {
      Native.register(C.class, "c");
    }

    static native int open(String path, int flags) throws LastErrorException;

    static native int ioctl(int fd, long request, Pointer arg) throws LastErrorException;

    static native long read(int fd, Pointer buf, long count) throws LastErrorException;

    static native long write(int fd, Pointer buf, long count) throws LastErrorException;

    static native int close(int fd) throws LastErrorException;
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
      int fd = C.open("/dev/net/tun", O_RDWR);
      Memory ifr = new Memory(40);
      ifr.clear();
      byte[] n = name.getBytes(StandardCharsets.US_ASCII);
      ifr.write(0, n, 0, Math.min(n.length, 15));
      ifr.setShort(16, (short) (IFF_TUN | IFF_NO_PI));
      try {
        C.ioctl(fd, TUNSETIFF, ifr);
      } catch (LastErrorException e) {
        C.close(fd);
        throw e;
      }
      return new Tun(fd, name);
    } catch (LastErrorException e) {
      throw new IOException(
          "cannot open TUN device " + name + " (errno " + e.getErrorCode() + ")", e);
    }
  }

  String name() {
    return name;
  }

  /**
   * Reads one packet into the writable part of {@code buf}, a native buffer, and advances its
   * writer index; returns the packet's length (blocks until one comes).
   */
  int read(ByteBuf buf) throws IOException {
    try {
      int n =
          (int)
              C.read(fd, new Pointer(buf.memoryAddress() + buf.writerIndex()), buf.writableBytes());
      buf.writerIndex(buf.writerIndex() + n);
      return n;
    } catch (LastErrorException e) {
      throw new IOException("read from " + name + " failed (errno " + e.getErrorCode() + ")", e);
    }
  }

  /**
   * Writes the readable bytes of {@code packet} as one packet (delivered to the node's routing as
   * if it arrived on the device), from its native memory when it has some.
   */
  void write(ByteBuf packet) throws IOException {
    int length = packet.readableBytes();
    try {
      if (packet.hasMemoryAddress()) {
        C.write(fd, new Pointer(packet.memoryAddress() + packet.readerIndex()), length);
      } else {
        Memory copy = new Memory(Math.max(1, length));
        copy.write(0, ByteBufUtil.getBytes(packet), 0, length);
        C.write(fd, copy, length);
      }
    } catch (LastErrorException e) {
      throw new IOException("write to " + name + " failed (errno " + e.getErrorCode() + ")", e);
    }
  }

  @Override
  public void close() {
    try {
      C.close(fd);
    } catch (LastErrorException ignored) {
      // already closed
    }
  }
}
