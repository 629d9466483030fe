#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""journal_sink — stands in for journald's native socket, for tests.

    journal_sink.py SOCKET OUT --parent PID

Binds SOCKET (AF_UNIX datagram, as /run/systemd/journal/socket) and writes every entry it
receives to OUT as one JSON object a line: {"FIELD": [values...], ...} (a field may repeat).
It reads journald's native protocol as sd_journal_sendv() writes it (systemd
docs/JOURNAL_NATIVE_PROTOCOL.md): "KEY=value\\n", or "KEY\\n" + 64-bit little-endian size +
value + "\\n" for values with a newline, and an entry too big for a datagram passed as a
memfd (SCM_RIGHTS). Ends when process PID ends (the daemon it serves), so it never outlives
its test.
"""

import array
import json
import os
import select
import socket
import struct
import sys


def parse(data):
    entry, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            i = nl + 1
        else:
            key = line
            (size,) = struct.unpack_from("<Q", data, nl + 1)
            value = data[nl + 9:nl + 9 + size]
            i = nl + 9 + size + 1
        entry.setdefault(key.decode(), []).append(value.decode(errors="replace"))
    return entry


def main(argv):
    path, out, parent = argv[1], argv[2], int(argv[argv.index("--parent") + 1])
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    pidfd = os.pidfd_open(parent)
    with open(out, "a", buffering=1) as f:
        while True:
            ready, _, _ = select.select([s, pidfd], [], [])
            if s in ready:
                fds = array.array("i")
                data, anc, _, _ = s.recvmsg(1 << 20, socket.CMSG_SPACE(fds.itemsize))
                for level, kind, payload in anc:
                    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                        fds.frombytes(payload[:fds.itemsize])
                for fd in fds:
                    data = os.pread(fd, 1 << 24, 0)
                    os.close(fd)
                f.write(json.dumps(parse(data)) + "\n")
            elif pidfd in ready:
                return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
