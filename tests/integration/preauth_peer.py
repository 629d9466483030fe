#!/usr/bin/env python3
"""A stranger on a destination's data port (issue 11 item 3), for test_data_port.sh.

Opens PER connections from each source address of --from (127.0.0.N: every loopback
address reaches the daemon, and each counts as another peer), sends --send (hex) on each,
then, every --dribble-ms if given, one more zero byte on each connection still open: a
1-byte-a-second client. It watches for the daemon closing them and keeps --status up to
date, one line per event, the last line the current count:
    connected N
    closed INDEX FROM_ADDRESS BYTES_SENT
    state open O closed C
It ends on SIGTERM, or after --max-s seconds (a bound, so that a daemon that never closes
does not keep it forever: it then writes "gave up").
"""
import argparse
import os
import select
import signal
import socket
import sys
import time


def write_status(path, lines):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("address")
    ap.add_argument("--from", dest="sources", required=True)
    ap.add_argument("--per", type=int, default=1)
    ap.add_argument("--send", default="")
    ap.add_argument("--dribble-ms", type=int, default=0)
    ap.add_argument("--max-s", type=float, default=120)
    ap.add_argument("--status", required=True)
    a = ap.parse_args()

    host, port = a.address.rsplit(":", 1)
    first = bytes.fromhex(a.send)
    conns = []  # [sock, source, sent, open]
    for src in a.sources.split(","):
        for _ in range(a.per):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((src, 0))
            s.connect((host, int(port)))
            sent = 0
            try:
                sent = s.send(first) if first else 0
            except OSError:
                pass
            conns.append([s, src, sent, True])
    lines = ["connected %d" % len(conns)]
    done = []
    signal.signal(signal.SIGTERM, lambda *_: done.append(1))
    end = time.monotonic() + a.max_s
    next_drip = time.monotonic() + a.dribble_ms / 1000.0
    while not done:
        opened = [c for c in conns if c[3]]
        lines_now = lines + ["state open %d closed %d" % (len(opened), len(conns) - len(opened))]
        write_status(a.status, lines_now)
        if time.monotonic() > end:
            lines.append("gave up")
            break
        try:
            ready, _, _ = select.select([c[0] for c in opened], [], [], 0.1)
        except InterruptedError:
            continue
        for c in opened:
            if c[0] not in ready:
                continue
            try:
                data = c[0].recv(4096)
            except OSError:
                data = b""
            if not data:  # closed (or reset) by the daemon; a REFUSE before it is read away
                c[3] = False
                lines.append("closed %d %s %d" % (conns.index(c), c[1], c[2]))
        if a.dribble_ms and time.monotonic() >= next_drip:
            next_drip = time.monotonic() + a.dribble_ms / 1000.0
            for c in conns:
                if c[3]:
                    try:
                        c[2] += c[0].send(b"\0")
                    except OSError:
                        pass
    opened = [c for c in conns if c[3]]
    write_status(a.status, lines + ["state open %d closed %d" % (len(opened), len(conns) - len(opened))])
    return 0


if __name__ == "__main__":
    sys.exit(main())
