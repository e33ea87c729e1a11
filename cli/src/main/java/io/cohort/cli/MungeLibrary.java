package io.cohort.cli;

import com.sun.jna.Library;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.ptr.IntByReference;
import com.sun.jna.ptr.PointerByReference;
import java.nio.charset.StandardCharsets;

/**
 * libmunge in the coordinator's process: {@code munge_decode(3)}, what {@code unmunge} does, for
 * each call on the TCP client port. Starting {@code unmunge} for each call cost a process start on
 * the call's path: 3 ms on an idle machine, 5 to 20 ms while a job kept both cores busy (measured
 * in docs/design.md). The CLI still makes its credential with the {@code munge} program: a short
 * command starts faster without loading JNA.
 *
 * <p>Loaded on first use, from Debian's {@code libmunge2} (a dependency of {@code munge}).
 */
final class MungeLibrary {
  /** munge.h's {@code MUNGE_OPT_SOCKET}: the munged socket a context talks to (a string). */
  private static final int MUNGE_OPT_SOCKET = 8;

  /** The functions used, as munge.h declares them (munge_err_t is an int). */
  private interface Lib extends Library {
    Pointer munge_ctx_create();

    void munge_ctx_destroy(Pointer ctx);

    int munge_ctx_set(Pointer ctx, int opt, Object... value);

    String munge_ctx_strerror(Pointer ctx);

    int munge_decode(
        String cred,
        Pointer ctx,
        PointerByReference buf,
        IntByReference len,
        IntByReference uid,
        IntByReference gid);
  }

  /** The library, or why it cannot be loaded: once per process. */
  private static final class Loaded {
    static final Lib LIB;
    static final String WHY;

    static {
      Lib lib = null;
      String why = null;
      try {
        lib = Native.load("libmunge.so.2", Lib.class);
      } catch (UnsatisfiedLinkError e) {
        why =
            "libmunge.so.2 cannot be loaded ("
                + e.getMessage()
                + "); the operator runs `./cohort setup` from the Cohort checkout (it installs "
                + "Debian's munge)";
      }
      LIB = lib;
      WHY = why;
    }
  }

  private MungeLibrary() {}

  /**
   * Checks {@code credential} with the munged on {@code socket}: who made it and its payload, or
   * {@link Munge.RefusedException} with munged's reason (munge_err_t, as {@code unmunge}'s exit
   * status).
   */
  static Munge.Verified decode(String socket, String credential) throws Munge.RefusedException {
    Lib lib = Loaded.LIB;
    if (lib == null) {
      throw new Munge.RefusedException(Munge.Refusal.NO_DAEMON, Loaded.WHY);
    }
    Pointer ctx = lib.munge_ctx_create();
    if (ctx == null) {
      throw new Munge.RefusedException(Munge.Refusal.NO_DAEMON, "munge_ctx_create: out of memory");
    }
    try {
      int set = lib.munge_ctx_set(ctx, MUNGE_OPT_SOCKET, socket);
      if (set != 0) {
        throw new Munge.RefusedException(Munge.Refusal.NO_DAEMON, lib.munge_ctx_strerror(ctx));
      }
      PointerByReference buf = new PointerByReference();
      IntByReference len = new IntByReference();
      IntByReference uid = new IntByReference();
      IntByReference gid = new IntByReference();
      int err = lib.munge_decode(credential, ctx, buf, len, uid, gid);
      Pointer payload = buf.getValue();
      try {
        if (err != 0) {
          String why = lib.munge_ctx_strerror(ctx);
          throw new Munge.RefusedException(Munge.Refusal.of(err), why == null ? "" : why);
        }
        return new Munge.Verified(
            uid.getValue(),
            gid.getValue(),
            payload == null
                ? ""
                : new String(payload.getByteArray(0, len.getValue()), StandardCharsets.UTF_8));
      } finally {
        if (payload != null) { // allocated by libmunge, even for some refusals (munge_decode(3))
          Native.free(Pointer.nativeValue(payload));
        }
      }
    } finally {
      lib.munge_ctx_destroy(ctx);
    }
  }
}
