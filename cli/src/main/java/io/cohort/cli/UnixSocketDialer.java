package io.cohort.cli;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.SocketAddress;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import java.util.concurrent.Future;

/**
 * Sockets to one Unix domain socket for gRPC's OkHttp transport, which dials only TCP: the address
 * it resolved is ignored and the JDK's own Unix-domain {@link SocketChannel} is connected instead.
 * A command needs one connection; Netty's transport, the other way to dial a Unix socket, costs
 * about 0.4 s of a short command's start (docs/benchmarks/README.md).
 */
final class UnixSocketDialer extends StreamSocket.Dialer {
  private final Path path;

  UnixSocketDialer(Path path) {
    this.path = path;
  }

  /**
   * Connects now, on a thread of its own, for the transport's first dial: the JDK's first
   * Unix-domain channel sets up its security providers (a {@code SecureRandom} for the names of
   * unbound sockets), about 7 ms of a cold JVM.
   */
  Future<StreamSocket> dialAhead() {
    return dialAhead("unix-dial", this::connect);
  }

  @Override
  StreamSocket connect() throws IOException {
    return new UnixSocket(path);
  }

  /**
   * A connected Unix socket. Reads and writes go straight to the channel, which locks each
   * direction apart, so a reader blocked on one thread never holds up a writer on another.
   */
  private static final class UnixSocket extends StreamSocket {
    private final SocketChannel channel;
    private final InputStream in;
    private final OutputStream out;

    UnixSocket(Path path) throws IOException {
      channel = SocketChannel.open(StandardProtocolFamily.UNIX);
      try {
        channel.connect(UnixDomainSocketAddress.of(path));
      } catch (IOException e) {
        channel.close();
        throw e;
      }
      in =
          new InputStream() {
            @Override
            public int read() throws IOException {
              byte[] one = new byte[1];
              return read(one, 0, 1) < 0 ? -1 : one[0] & 0xff;
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
              if (len == 0) {
                return 0;
              }
              return channel.read(ByteBuffer.wrap(b, off, len));
            }
          };
      out =
          new OutputStream() {
            @Override
            public void write(int b) throws IOException {
              write(new byte[] {(byte) b}, 0, 1);
            }

            @Override
            public void write(byte[] b, int off, int len) throws IOException {
              ByteBuffer buf = ByteBuffer.wrap(b, off, len);
              while (buf.hasRemaining()) {
                channel.write(buf);
              }
            }
          };
    }

    @Override
    public InputStream getInputStream() {
      return in;
    }

    @Override
    public OutputStream getOutputStream() {
      return out;
    }

    @Override
    public boolean isConnected() {
      return channel.isConnected();
    }

    // The addresses are the channel's: left to Socket, they would make it create a TCP socket of
    // its own to ask (and report 0.0.0.0:0).
    @Override
    public SocketAddress getRemoteSocketAddress() {
      return orNull(channel::getRemoteAddress);
    }

    @Override
    public SocketAddress getLocalSocketAddress() {
      return orNull(channel::getLocalAddress);
    }

    private interface Address {
      SocketAddress get() throws IOException;
    }

    /** The address, or null once the channel is closed (as Socket answers). */
    private static SocketAddress orNull(Address a) {
      try {
        return a.get();
      } catch (IOException closed) {
        return null;
      }
    }

    @Override
    public boolean isClosed() {
      return !channel.isOpen();
    }

    @Override
    public void shutdownInput() throws IOException {
      channel.shutdownInput();
    }

    @Override
    public void shutdownOutput() throws IOException {
      channel.shutdownOutput();
    }

    @Override
    void release() throws IOException {
      channel.close();
    }
  }
}
