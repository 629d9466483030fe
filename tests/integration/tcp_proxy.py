#!/usr/bin/python3
"""tcp_proxy.py — a tiny TCP forwarder for the migration integration tests (stdlib only).

    tcp_proxy.py TARGET_HOST:TARGET_PORT [--flip-at N] [--cut-at MESSAGE] [--capture FILE]
                 [--port-file FILE]

Listens on 127.0.0.1:0 and forwards EVERY connection it accepts (the migration's control
connection and each device's data connection) to TARGET, both ways, until one side closes.
The bound port is printed on stdout as "127.0.0.1:PORT" (and written to --port-file, atomically,
when given) once the proxy accepts connections.

--flip-at N   flips (XOR 0xFF) the byte at offset N of the first client->target byte stream
              that grows past N bytes; only once for the whole proxy. The control connection
              never carries that much, so a large N lands in a device's data channel.
--cut-at MESSAGE
              reads the migration's control connection (the one that opens with HELLO) as
              control frames ([u32 type][u32 length][payload], docs/migration.md), both ways, and
              at the first frame of that type (HELLO, ACCEPT, STREAM_END, PREPARED, COMMIT,
              DONE, ...) drops it and cuts the link: every connection of the proxy is shut
              down at once (the control one and every data channel) and later ones are closed
              as they come. PINGs pass.
--capture FILE
              appends every byte forwarded, both ways and on every connection, to FILE: what
              anyone on the path sees (the TLS test looks there for the token and the devices'
              content).
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
CAPTURE = None
CAPTURE_LOCK = threading.Lock()


def capture(data):
    if CAPTURE is not None:
        with CAPTURE_LOCK:
            CAPTURE.write(data)
            CAPTURE.flush()


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


MESSAGES = {"HELLO": 1, "ACCEPT": 2, "REFUSE": 3, "DATA_HELLO": 4, "DATA_ACCEPT": 5, "PING": 6,
            "STREAM_END": 7, "CONFIRM": 8, "FAIL": 9, "PREPARED": 10, "COMMIT": 11, "DONE": 12}


class Cutter:
    """Cuts every connection at once when the control connection carries one message type."""

    def __init__(self, name):
        self.type = MESSAGES[name]
        self.name = name
        self.lock = threading.Lock()
        self.socks = []
        self.cut = False

    def add(self, *socks):
        with self.lock:
            if not self.cut:
                self.socks.extend(socks)
                return True
        return False

    def cut_now(self, conn_id, direction):
        with self.lock:
            if self.cut:
                return
            self.cut = True
            log("conn %d: dropped %s (%s) and cut the link" % (conn_id, self.name, direction))
            for s in self.socks:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def pass_end(src, dst):
    """Passes the end on: the other side sees EOF (or a reset if it keeps writing)."""
    for s, how in ((dst, socket.SHUT_WR), (src, socket.SHUT_RD)):
        try:
            s.shutdown(how)
        except OSError:
            pass


def recv_exact(src, n):
    buf = b""
    while len(buf) < n:
        data = src.recv(n - len(buf))
        if not data:
            return None
        buf += data
    return buf


def pump_frames(src, dst, conn_id, cutter, direction):
    """Forwards whole control frames; the one the cutter waits for cuts the link instead."""
    try:
        while True:
            hdr = recv_exact(src, 8)
            if hdr is None:
                break
            mtype = int.from_bytes(hdr[:4], "little")
            size = int.from_bytes(hdr[4:], "little")
            payload = recv_exact(src, size) if size else b""
            if payload is None:
                break
            if mtype == cutter.type:
                cutter.cut_now(conn_id, direction)
                return
            capture(hdr + payload)
            dst.sendall(hdr + payload)
    except OSError:
        pass
    finally:
        pass_end(src, dst)


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
            capture(data)
            dst.sendall(data)
    except OSError:
        pass
    finally:
        pass_end(src, dst)


def is_control(client):
    """A control connection opens with HELLO (type 1); a data channel with DATA_HELLO."""
    try:
        hdr = client.recv(8, socket.MSG_PEEK | socket.MSG_WAITALL)
    except OSError:
        return False
    return len(hdr) == 8 and int.from_bytes(hdr[:4], "little") == MESSAGES["HELLO"]


def serve(client, target, conn_id, flipper, cutter=None):
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
    if cutter is not None and not cutter.add(client, upstream):
        log("conn %d: the link is cut; closed" % conn_id)
        client.close()
        upstream.close()
        return
    if cutter is not None and is_control(client):
        log("conn %d: the control connection" % conn_id)
        a = threading.Thread(target=pump_frames, args=(client, upstream, conn_id, cutter, "to the target"), daemon=True)
        b = threading.Thread(target=pump_frames, args=(upstream, client, conn_id, cutter, "from the target"), daemon=True)
    else:
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
        sys.exit("usage: tcp_proxy.py HOST:PORT [--flip-at N] [--cut-at MESSAGE] [--port-file FILE]")
    host, _, port = argv[1].rpartition(":")
    target = (host, int(port))
    flip_at = None
    cut_at = None
    port_file = None
    args = argv[2:]
    while args:
        opt = args.pop(0)
        if opt == "--flip-at":
            flip_at = int(args.pop(0))
        elif opt == "--cut-at":
            cut_at = args.pop(0)
            if cut_at not in MESSAGES:
                sys.exit("tcp_proxy.py: --cut-at: no message %r (one of %s)" % (cut_at, ", ".join(MESSAGES)))
        elif opt == "--capture":
            global CAPTURE
            CAPTURE = open(args.pop(0), "ab")
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
    cutter = Cutter(cut_at) if cut_at is not None else None
    n = 0
    while True:
        client, _ = srv.accept()
        n += 1
        threading.Thread(target=serve, args=(client, target, n, flipper, cutter), daemon=True).start()


if __name__ == "__main__":
    main(sys.argv)
