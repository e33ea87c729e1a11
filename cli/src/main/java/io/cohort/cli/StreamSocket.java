package io.cohort.cli;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.net.InetAddress;
import java.net.Socket;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
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
    /** The connection begun by {@link #dialAhead}, until the transport's first dial takes it. */
    private FutureTask<StreamSocket> ahead;

    /** A new connection to the dialer's peer. */
    abstract StreamSocket connect() throws IOException;

    /**
     * Begins {@code first} now, on a thread of its own named {@code thread}, for the transport's
     * first dial, which takes its connection, or its failure as its own. What it costs (a JVM's
     * first Unix-domain channel or process start, a TLS handshake) then overlaps the loading of
     * gRPC's classes rather than following it. Returns the connection's making, done once it is
     * connected or has failed. A second call changes nothing.
     */
    final synchronized Future<StreamSocket> dialAhead(String thread, Callable<StreamSocket> first) {
      if (ahead == null) {
        ahead = new FutureTask<>(first);
        Thread t = new Thread(ahead, thread);
        t.setDaemon(true);
        t.start();
      }
      return ahead;
    }

    /** The connection begun ahead if nobody took it yet, once made; else a new one. */
    final StreamSocket dial() throws IOException {
      FutureTask<StreamSocket> begun;
      synchronized (this) {
        begun = ahead;
        ahead = null;
      }
      if (begun == null) {
        return connect();
      }
      try {
        return begun.get();
      } catch (ExecutionException e) {
        throw e.getCause() instanceof IOException io ? io : new IOException(e.getCause());
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
        throw new InterruptedIOException("interrupted while connecting");
      }
    }

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
