package io.cohort.cli;

import io.cohort.common.CohortException;
import io.cohort.common.ProcessRunner;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * MUNGE: {@code munge} makes a credential that names the uid and gid of the process that asked for
 * it; the coordinator checks one with its local munged ({@link MungeLibrary}), which refuses it
 * when it is forged (the MAC does not match the realm's key), expired (older than its time to live,
 * 5 minutes), or replayed (munged remembers every credential it decoded until it expires). Every
 * machine of a realm runs munged with the same key ({@code setup/munge.sh}); that key, not this
 * code, is what the trust rests on.
 *
 * <p>The CLI makes its credential with the {@code munge} program, which the package documents and
 * keeps stable: a few milliseconds of process start, less than loading a native-call library into a
 * short command. The coordinator, which checks one for every call on its TCP port, calls libmunge
 * in process (docs/design.md).
 */
final class Munge {
  /** The local munged's socket, as Debian's munged makes it. */
  static final String DEFAULT_SOCKET = "/run/munge/munge.socket.2";

  /**
   * The longest credential decoded (far above one with a call's name as its payload, about 150
   * bytes): longer ones are refused unread, so munged is not asked to decode large ones.
   */
  static final int MAX_CREDENTIAL = 2048;

  private static final Duration DEADLINE = Duration.ofSeconds(10);
  private static final Pattern ARMOR = Pattern.compile("MUNGE:[A-Za-z0-9+/=]+:");

  /**
   * What the credential for a call of {@code fullMethodName} carries (here, not in {@link
   * MungeCredentials}, whose gRPC classes a command would otherwise load before it dials).
   */
  static String callPayload(String fullMethodName) {
    return "cohort " + fullMethodName;
  }

  /** What a valid credential said. */
  record Verified(int uid, int gid, String payload) {}

  /**
   * Why a credential was not valid, by munge_decode's munge_err_t (munge.h; {@code unmunge}'s exit
   * status): what a caller is told, and whether it is the caller's doing or this machine's.
   */
  enum Refusal {
    INVALID("it is not a valid MUNGE credential (malformed, or made with another realm's key)"),
    EXPIRED("it has expired (older than its time to live; are the machines' clocks in step?)"),
    REWOUND("it was made in the future (the machines' clocks are not in step)"),
    REPLAYED("it was replayed (a credential is good for one call only)"),
    UNAUTHORIZED("it may only be decoded by another user"),
    /** The checking machine cannot check (munged does not answer): not the caller's fault. */
    NO_DAEMON(
        "the coordinator's machine cannot check MUNGE credentials now (munged does not answer "
            + "there); its operator runs `setup/munge.sh --start` from the Cohort checkout");

    final String reason;

    Refusal(String reason) {
      this.reason = reason;
    }

    static Refusal of(int error) {
      return switch (error) {
        case 6, 7 -> NO_DAEMON; // EMUNGE_SOCKET, EMUNGE_TIMEOUT
        case 15 -> EXPIRED;
        case 16 -> REWOUND;
        case 17 -> REPLAYED;
        case 18 -> UNAUTHORIZED;
        default -> INVALID;
      };
    }
  }

  /** A credential refused, with why and what munged said. */
  static final class RefusedException extends Exception {
    private static final long serialVersionUID = 1L;
    final Refusal refusal;

    RefusedException(Refusal refusal, String detail) {
      super(refusal.reason + (detail.isEmpty() ? "" : " (" + detail + ")"));
      this.refusal = refusal;
    }
  }

  private final String socket;

  /** MUNGE through the munged on {@code socket}. */
  Munge(String socket) {
    this.socket = socket;
  }

  static Munge system() {
    return new Munge(DEFAULT_SOCKET);
  }

  String socket() {
    return socket;
  }

  /**
   * A credential for this process's uid and gid carrying {@code payload}, which only root may
   * decode (the daemons are root; a credential sent to anyone else is worth nothing to them).
   * UNAUTHENTICATED, saying what to do, when none can be made here.
   */
  String credential(String payload) {
    return encode(payload, true);
  }

  private String encode(String payload, boolean rootOnly) {
    List<String> cmd = new ArrayList<>(List.of("munge", "--socket", socket, "--string", payload));
    if (rootOnly) {
      cmd.addAll(List.of("--restrict-uid", "0"));
    }
    ProcessRunner.Result r;
    try {
      r = ProcessRunner.runSmall(DEADLINE, cmd, null);
    } catch (CohortException e) {
      throw new CohortException(
          CohortException.Kind.UNAUTHENTICATED,
          "cannot prove who you are to a coordinator on another machine: MUNGE's `munge` "
              + "program does not run here ("
              + e.getMessage()
              + "); as root, run `./cohort setup` from the Cohort checkout (it installs Debian's "
              + "munge), then give this machine the cluster's MUNGE key (see the user guide)",
          e);
    }
    if (!r.ok() || !ARMOR.matcher(r.output()).matches()) {
      throw new CohortException(
          CohortException.Kind.UNAUTHENTICATED,
          "cannot prove who you are to a coordinator on another machine: `munge` failed ("
              + r.output()
              + "); munged must run on this machine with the cluster's key: as root, "
              + "`setup/munge.sh --start` from the Cohort checkout, or `./cohort setup`");
    }
    return r.output();
  }

  /**
   * Checks {@code credential} with munged (which also makes sure it is never accepted twice).
   * Throws {@link RefusedException} for a credential that is not valid, or when munged cannot tell
   * ({@link Refusal#NO_DAEMON}).
   */
  Verified verify(String credential) throws RefusedException {
    if (credential == null
        || credential.length() > MAX_CREDENTIAL
        || !ARMOR.matcher(credential).matches()) {
      throw new RefusedException(Refusal.INVALID, "");
    }
    return MungeLibrary.decode(socket, credential);
  }

  /**
   * Starts munged on this machine if it does not answer, the way {@code setup/munge.sh --start} in
   * the checkout of {@code launcher} (the {@code cohort} script) does it: what `cohort cluster up`
   * needs for its coordinator's TCP port. Returns a line for the user either way: a cluster without
   * MUNGE still serves this machine's users on its Unix socket.
   */
  static String ensureDaemon(Path launcher) {
    Path script = launcher.toAbsolutePath().getParent().resolve("setup").resolve("munge.sh");
    ProcessRunner.Result r;
    try {
      r =
          ProcessRunner.run(
              Duration.ofMinutes(1), Map.of(), List.of("bash", script.toString(), "--start"));
    } catch (CohortException e) {
      r = new ProcessRunner.Result(-1, e.getMessage());
    }
    if (r.ok()) {
      return "MUNGE: munged answers (callers over TCP prove who they are with it)";
    }
    return "MUNGE does not work here, so calls on the coordinator's TCP port will be refused "
        + "(this machine's users are served on its Unix socket): "
        + r.output().replace('\n', ' ');
  }

  /**
   * A credential made and checked here (any user may decode this one), as {@code cohort doctor}
   * does: null when munged answers, else what went wrong.
   */
  String roundTrip() {
    try {
      Verified v = verify(encode("cohort doctor", false));
      return v.payload().equals("cohort doctor")
          ? null
          : "the payload came back as '" + v.payload() + "'";
    } catch (CohortException e) {
      return e.getMessage();
    } catch (RefusedException e) {
      return "munged refused a fresh credential: " + e.getMessage();
    }
  }
}
