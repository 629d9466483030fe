#!/usr/bin/python3
"""tcp_proxy.py — a tiny TCP forwarder for the migration integration tests (stdlib only).

    tcp_proxy.py TARGET_HOST:TARGET_PORT [--flip-at N] [--port-file FILE]

Listens on 127.0.0.1:0 and forwards EVERY connection it accepts (the migration's control
connection and each device's data connection) to TARGET, both ways, until one side closes.
The bound port is printed on stdout as "127.0.0.1:PORT" (and written to --port-file, atomically,
when given) once the proxy accepts connections.

--flip-at N   flips (XOR 0xFF) the byte at offset N of the first client->target byte stream
              that grows past N bytes; only once for the whole proxy. The control connection
              never carries that much, so a large N lands in a device's data channel.
The link is cut by killing the proxy (SIGKILL): the kernel then closes every socket of it, and
both daemons see their connections end. SIGTERM does the same, politely.
Events (connections, the flip) are logged on stderr.
"""
import os
import signal
import socket
import sys
import threading

CHUNK = 65536


def log(msg):
    sys.stderr.write("tcp_proxy[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


class Flipper:
    """Flips one byte, once, at offset `at` of the first upstream stream reaching it."""

    def __init__(self, at):
        self.at = at
        self.lock = threading.Lock()
        self.done = at is None

    def apply(self, conn_id, offset, data):
        if self.done or offset + len(data) <= self.at:
            return data
        with self.lock:
            if self.done:
                return data
            self.done = True
        i = self.at - offset
        b = bytearray(data)
        log("conn %d: flipping byte at offset %d (0x%02x -> 0x%02x)" % (conn_id, self.at, b[i], b[i] ^ 0xFF))
        b[i] ^= 0xFF
        return bytes(b)


def pump(src, dst, conn_id, flipper, upstream):
    offset = 0
    try:
        while True:
            data = src.recv(CHUNK)
            if not data:
                break
            if upstream and flipper is not None:
                data = flipper.apply(conn_id, offset, data)
            offset += len(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        # Pass the end on: the other side sees EOF (or a reset if it keeps writing).
        for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
            try:
                s.shutdown(how)
            except OSError:
                pass


def serve(client, target, conn_id, flipper):
    try:
        upstream = socket.create_connection(target, timeout=10)
        upstream.settimeout(None)
    except OSError as e:
        log("conn %d: cannot reach %s:%d: %s" % (conn_id, target[0], target[1], e))
        client.close()
        return
    log("conn %d: forwarding to %s:%d" % (conn_id, target[0], target[1]))
    for s in (client, upstream):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    a = threading.Thread(target=pump, args=(client, upstream, conn_id, flipper, True), daemon=True)
    b = threading.Thread(target=pump, args=(upstream, client, conn_id, flipper, False), daemon=True)
    a.start()
    b.start()
    a.join()
    b.join()
    client.close()
    upstream.close()
    log("conn %d: closed" % conn_id)


def main(argv):
    if len(argv) < 2:
        sys.exit("usage: tcp_proxy.py HOST:PORT [--flip-at N] [--port-file FILE]")
    host, _, port = argv[1].rpartition(":")
    target = (host, int(port))
    flip_at = None
    port_file = None
    args = argv[2:]
    while args:
        opt = args.pop(0)
        if opt == "--flip-at":
            flip_at = int(args.pop(0))
        elif opt == "--port-file":
            port_file = args.pop(0)
        else:
            sys.exit("tcp_proxy.py: unknown option %r" % opt)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    bound = "127.0.0.1:%d" % srv.getsockname()[1]
    if port_file:
        tmp = port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write(bound + "\n")
        os.rename(tmp, port_file)
    print(bound, flush=True)
    flipper = Flipper(flip_at) if flip_at is not None else None
    n = 0
    while True:
        client, _ = srv.accept()
        n += 1
        threading.Thread(target=serve, args=(client, target, n, flipper), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv)
