package io.cohort.agent;

import com.sun.jna.LastErrorException;
import com.sun.jna.Library;
import com.sun.jna.Native;

/** The few libc calls the JVM lacks. */
interface LibC extends Library {
  LibC INSTANCE = Native.load("c", LibC.class);

  int mkfifo(String path, int mode);

  int kill(int pid, int sig);

  int geteuid();

  /** Size of extended attribute {@code name} of {@code path} (following links). */
  long getxattr(String path, String name, byte[] value, long size) throws LastErrorException;
}
