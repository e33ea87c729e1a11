package io.cohort.agent;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * What the agent reads of a task's {@code /proc/PID[/task/TID]/status}: its name, state, parent,
 * pid in its own namespace, tracer and credentials.
 *
 * <p>Parsed by hand, one pass, no regular expression: a checkpoint reads one per thread of every
 * vhost, in an agent whose code for it runs too seldom to be compiled.
 *
 * @param state the first letter of {@code State} ('R', 'S', 'T', 't', 'Z'...), '?' if absent
 * @param nsPid the last {@code NSpid}: the pid in the innermost namespace (the vhost's)
 */
record ProcStatus(
    String name, char state, long ppid, int nsPid, long tracerPid, TaskCredentials.Creds creds) {

  /** A zombie: it runs nothing. */
  boolean dead() {
    return state == 'Z' || state == 'X';
  }

  /** null if the task ended meanwhile. */
  static ProcStatus read(Path file) {
    String text = ProcTree.read(file);
    return text == null ? null : parse(text);
  }

  static ProcStatus parse(String s) {
    String name = "";
    char state = '?';
    long ppid = 0;
    long tracer = 0;
    long[] nsPid = {0};
    long[] uid = {0, 0, 0, 0};
    long[] gid = {0, 0, 0, 0};
    long[] groups = {};
    long capInh = 0;
    long capPrm = 0;
    long capEff = 0;
    long capAmb = 0;
    int at = 0;
    while (at < s.length()) {
      int nl = s.indexOf('\n', at);
      if (nl < 0) {
        nl = s.length();
      }
      int colon = s.indexOf(':', at);
      if (colon > at && colon < nl) {
        int v = colon + 1;
        while (v < nl && (s.charAt(v) == ' ' || s.charAt(v) == '\t')) {
          v++;
        }
        switch (s.substring(at, colon)) {
          case "Name" -> name = s.substring(v, nl);
          case "State" -> state = v < nl ? s.charAt(v) : '?';
          case "PPid" -> ppid = ProcTree.numbers(s, v, nl, 1)[0];
          case "TracerPid" -> tracer = ProcTree.numbers(s, v, nl, 1)[0];
          case "NSpid" -> nsPid = ProcTree.numbers(s, v, nl, 0);
          case "Uid" -> uid = ProcTree.numbers(s, v, nl, 4);
          case "Gid" -> gid = ProcTree.numbers(s, v, nl, 4);
          case "Groups" -> groups = ProcTree.numbers(s, v, nl, 0);
          case "CapInh" -> capInh = hex(s, v, nl);
          case "CapPrm" -> capPrm = hex(s, v, nl);
          case "CapEff" -> capEff = hex(s, v, nl);
          case "CapAmb" -> capAmb = hex(s, v, nl);
          default -> {}
        }
      }
      at = nl + 1;
    }
    List<Integer> groupList = new ArrayList<>(groups.length);
    for (long g : groups) {
      groupList.add((int) g);
    }
    return new ProcStatus(
        name,
        state,
        ppid,
        nsPid.length == 0 ? 0 : (int) nsPid[nsPid.length - 1],
        tracer,
        new TaskCredentials.Creds(
            (int) uid[0],
            (int) uid[1],
            (int) uid[2],
            (int) uid[3],
            (int) gid[0],
            (int) gid[1],
            (int) gid[2],
            (int) gid[3],
            groupList,
            capInh,
            capPrm,
            capEff,
            capAmb));
  }

  private static long hex(String s, int from, int to) {
    long v = 0;
    for (int i = from; i < to; i++) {
      int d = Character.digit(s.charAt(i), 16);
      if (d < 0) {
        break;
      }
      v = (v << 4) | d;
    }
    return v;
  }
}
