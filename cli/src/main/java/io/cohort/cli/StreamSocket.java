package io.cohort.cli;

import java.io.IOException;
import java.net.InetAddress;
import java.net.Socket;
import javax.net.SocketFactory;

/**
 * A connected byte stream that is not a TCP socket, behind {@link Socket}'s interface for gRPC's
 * OkHttp transport, as much of it as that transport uses: streams, addresses, close, and TCP
 * options that mean nothing here (accepted and ignored). Subclasses give the streams and what to
 * release on close.
 */
abstract class StreamSocket extends Socket {

  /**
   * Sockets to one fixed peer, whatever address the transport resolved and asks for: it is given a
   * placeholder target, and the real one is the dialer's.
   */
  abstract static class Dialer extends SocketFactory {
    /** A new connection to the dialer's peer. */
    abstract StreamSocket dial() throws IOException;

    @Override
    public Socket createSocket() throws IOException {
      return dial();
    }

    @Override
    public Socket createSocket(String host, int port) throws IOException {
      return dial();
    }

    @Override
    public Socket createSocket(String host, int port, InetAddress local, int localPort)
        throws IOException {
      return dial();
    }

    @Override
    public Socket createSocket(InetAddress host, int port) throws IOException {
      return dial();
    }

    @Override
    public Socket createSocket(InetAddress address, int port, InetAddress local, int localPort)
        throws IOException {
      return dial();
    }
  }

  /** Releases the stream's resources; called once, by {@link #close}. */
  abstract void release() throws IOException;

  @Override
  public InetAddress getInetAddress() {
    return null; // not an IP socket of this process
  }

  @Override
  public int getPort() {
    return 0;
  }

  @Override
  public String toString() {
    return getClass().getSimpleName() + "[" + getRemoteSocketAddress() + "]";
  }

  @Override
  public void setTcpNoDelay(boolean on) {}

  @Override
  public void setSoTimeout(int timeout) {}

  @Override
  public void setKeepAlive(boolean on) {}

  @Override
  public synchronized void close() throws IOException {
    if (isClosed()) {
      return;
    }
    try {
      super.close(); // Socket's own state (it holds no descriptor: nothing here asks it for one)
    } finally {
      release();
    }
  }
}
