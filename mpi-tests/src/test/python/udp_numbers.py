"""Numbered UDP datagrams between two vhosts, run by mpirun -np 2 (no MPI calls).

Rank 0 sends datagrams numbered 0, 1, 2, ... to rank 1 at a steady pace (one per millisecond,
never catching up after a pause) until the stop file exists, then END until rank 1 answers.
Rank 1 counts what it receives and prints, at the end, how many were sent, missing and repeated:
a checkpoint that lost or duplicated a datagram in flight shows here.
"""
import os
import socket
import struct
import sys
import time

PORT = 7309
stop_file = sys.argv[1]
rank = int(os.environ["OMPI_COMM_WORLD_RANK"])
with open(os.environ["OMPI_MCA_orte_default_hostfile"]) as f:
    hosts = [line.split()[0] for line in f if line.strip()]

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE: a frozen pause must not overflow
s.bind(("0.0.0.0", PORT))

if rank == 0:
    peer = (hosts[1], PORT)
    # Rank 1 may not be bound yet: wait for its HELLO (resent until answered), as nothing else
    # would tell a datagram lost at the start from one lost at a cut.
    while s.recv(64) != b"HELLO":
        pass
    s.sendto(b"GO", peer)
    seq = 0
    pad = b"." * 1000
    last = time.monotonic()
    while not os.path.exists(stop_file):
        s.sendto(struct.pack("!Q", seq) + pad, peer)
        seq += 1
        time.sleep(0.001)
        now = time.monotonic()
        if now - last > 0.1:  # frozen by a checkpoint (or stopped and restarted): say where
            print("sender: paused %.3f s before datagram %d" % (now - last, seq), flush=True)
        last = now
    s.settimeout(0.05)
    while True:
        s.sendto(b"END" + struct.pack("!Q", seq), peer)
        try:
            if s.recv(64) == b"BYE":
                break
        except socket.timeout:
            pass
    print("sender: sent %d" % seq, flush=True)
else:
    s.settimeout(0.1)
    first = None  # GO, or the first datagram if GO was lost
    while first is None:
        s.sendto(b"HELLO", (hosts[0], PORT))
        try:
            first = s.recvfrom(2048)
        except socket.timeout:
            pass
    s.settimeout(None)
    seen = set()
    dups = 0
    while True:
        data, addr = first if first else s.recvfrom(2048)
        first = None
        if data == b"GO":
            continue
        if data.startswith(b"END"):
            sent = struct.unpack("!Q", data[3:11])[0]
            for _ in range(20):
                s.sendto(b"BYE", addr)
            break
        n = struct.unpack("!Q", data[:8])[0]
        if n in seen:
            dups += 1
        seen.add(n)
        if len(seen) % 1000 == 0:
            print("received %d" % len(seen), flush=True)
    gaps = []  # the missing ones as ranges, to tell a lost cut from scattered drops
    for i in range(sent):
        if i not in seen:
            if gaps and gaps[-1][1] == i - 1:
                gaps[-1][1] = i
            else:
                gaps.append([i, i])
    missing = sum(b - a + 1 for a, b in gaps)
    print("receiver: sent %d received %d missing %d repeated %d" % (sent, len(seen), missing, dups),
          flush=True)
    print("receiver: missing ranges %s" % ", ".join("%d-%d" % (a, b) for a, b in gaps[:40]),
          flush=True)
