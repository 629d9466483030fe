#!/usr/bin/python3
"""foreign_server.py — a TCP server that is NOT vfio-migd, for the "say what the peer is"
tests (stdlib only).

    foreign_server.py MODE --port-file FILE [--unix PATH]

Listens on 127.0.0.1:0 (or on the unix socket PATH, as a server that is not vfio-migd would
on the path given to `vfio-migctl --socket`), writes "127.0.0.1:PORT" (or PATH) to FILE
(atomically) once it accepts connections, and answers every connection as MODE says, until
killed:

  http      reads what the client sent first and answers an HTTP/1.1 400 (nginx's answer
            to a request line that does not start with a method)
  random    sends 64 random bytes at once, then reads until the peer closes
  close     closes at once without sending anything
  short     sends "SSH" (3 bytes, less than a message header) and closes
  silent    reads and never answers (until the peer closes)
  confirm   a vfio-migd message the protocol never sends first: CONFIRM, empty
  truncated the header of a 64-byte ACCEPT, then 10 bytes of it, then closes
  v1        a vfio-migd of control protocol 1: reads the HELLO, answers an ACCEPT of the key
            alone (64 hex characters, no protocol version), then reads until the peer closes
"""
import os
import socket
import struct
import sys
import threading


def drain(c):
    while c.recv(65536):
        pass


def serve(mode, c):
    try:
        if mode == "http":
            # As nginx does: a request that does not start with a method is refused at once.
            c.recv(4096)
            c.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        elif mode == "random":
            c.sendall(os.urandom(64))
            drain(c)
        elif mode == "short":
            c.sendall(b"SSH")
        elif mode == "silent":
            drain(c)
        elif mode == "confirm":
            c.sendall(struct.pack("<II", 8, 0))
            drain(c)
        elif mode == "v1":
            c.recv(65536)
            c.sendall(struct.pack("<II", 2, 64) + b"ab" * 32)
            drain(c)
        elif mode == "truncated":
            c.sendall(struct.pack("<II", 2, 64) + b"0123456789")
    except OSError:
        pass
    finally:
        c.close()


def main():
    mode = sys.argv[1]
    port_file = sys.argv[sys.argv.index("--port-file") + 1]
    if "--unix" in sys.argv:
        path = sys.argv[sys.argv.index("--unix") + 1]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        where = path
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        where = "127.0.0.1:%d" % s.getsockname()[1]
    s.listen(16)
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(where + "\n")
    os.rename(tmp, port_file)
    while True:
        c, _ = s.accept()
        threading.Thread(target=serve, args=(mode, c), daemon=True).start()


if __name__ == "__main__":
    main()
