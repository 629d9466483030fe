#!/usr/bin/env python3
"""A VMM that sends whatever it is told on the VMM socket (docs/vmm-protocol.md), for
test_vmm.sh: the messages no well-behaved client sends (NULs, too long, stray fds).

    vmm_raw.py SOCKET [TIMEOUT_S]

Connects, prints the daemon's greeting as one line, then for each line on stdin
    N_FDS MESSAGE
(MESSAGE a Python bytes literal, e.g. b'HELLO 1\\x00junk', optionally repeated: b'x' * 600)
sends MESSAGE as one message with N_FDS fresh eventfds attached, prints the daemon's answer
as one line (fds the answer carries are closed; "closed" when the daemon closed the
connection), and waits for the next line. Every wait for the daemon is bounded by TIMEOUT_S (default 60): it then prints
"timeout" and ends, so a daemon that never answers fails the test instead of hanging it.
"""
import array
import ast
import os
import socket
import sys


def answer(sock):
    fd_size = array.array("i").itemsize
    data, anc, _flags, _addr = sock.recvmsg(1024, socket.CMSG_SPACE(4 * fd_size))
    for level, kind, payload in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds = array.array("i")
            fds.frombytes(payload[: len(payload) - len(payload) % fd_size])
            for fd in fds:
                os.close(fd)
    return data.decode(errors="replace") if data else "closed"


def main():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(float(sys.argv[2]) if len(sys.argv) > 2 else 60.0)
    sock.connect(sys.argv[1])
    try:
        print(answer(sock), flush=True)
        for line in sys.stdin:
            n_fds, literal = line.rstrip("\n").split(" ", 1)
            literal, _, times = literal.partition(" * ")
            message = ast.literal_eval(literal) * int(times or 1)
            fds = [os.eventfd(0, os.EFD_CLOEXEC) for _ in range(int(n_fds))]
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
            sock.sendmsg([message], anc)
            for fd in fds:
                os.close(fd)
            print(answer(sock), flush=True)
    except socket.timeout:
        print("timeout", flush=True)


if __name__ == "__main__":
    main()
