#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""sdharness — plays systemd's service manager for one service, for tests.

What it does as systemd 252 does (man sd_notify, sd_listen_fds, systemd.socket, systemd.service;
the fd store as in shared reference systemd-fdstore.md):
  * a notify socket (AF_UNIX datagram, SO_PASSCRED) passed as NOTIFY_SOCKET; every message is
    recorded with its sender's pid and the fds it carried (SCM_RIGHTS). Only the main process
    is heard (NotifyAccess=main, which FileDescriptorStoreMax= implies); control data that
    does not fit drops the message, as systemd does.
  * READY=1, STATUS=, WATCHDOG=1, STOPPING=1 are recorded (the watchdog is not enforced).
  * FDSTORE=1 (FDNAME=, default "stored") keeps the fds: names of at most 255 characters
    without ':' or control characters, duplicates (the same open file, kcmp) dropped, at most
    --fdstore-max fds (default 0: the store is off and the fds are closed, as systemd's
    default). FDSTOREREMOVE=1 with FDNAME= closes every fd of that name. Fds sent without
    FDSTORE=1 are closed. Stored fds stay open across the service's exits and restarts (a
    crash with Restart=on-failure, or `systemctl restart`); `fdstore-clear` drops them
    (`systemctl stop`).
  * listening sockets, as .socket units make them, kept open across restarts, so clients
    queue while no daemon runs;
  * start: fork, setsid, stdin /dev/null, stdout and stderr appended to a log file, the
    socket fds first (in the order they were made) and then the stored fds, from fd 3 on,
    with LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID (the child's own pid, set after fork);
    NOTIFY_SOCKET; WATCHDOG_USEC/WATCHDOG_PID with --watchdog-usec; JOURNAL_STREAM naming the
    log file with --journal-stream (the daemon then takes stderr for the journal).

Usage (a manager process, then one short client per command):
    sdharness.py serve DIR [--fdstore-max N] &    # makes DIR/control.sock, DIR/notify.sock
    sdharness.py ctl DIR COMMAND [ARGS...]       # prints the answer; exit 0 ok, 1 not
Commands:
    listen NAME PATH [MODE]      a listening unix stream socket (MODE octal, default 660)
    pass NAME KIND [PATH]        a wrong fd passed as NAME, for refusal tests: KIND is file,
                                 dgram (bound at PATH) or stream (not listening)
    close NAME                   closes the sockets (and wrong fds) of that name
    start [--watchdog-usec N] [--journal-stream] [--log FILE] [--env K=V]... -- ARGV...
                                 starts the main process; answers its pid
    pid                          the main process's pid (an error when none runs)
    wait-notify REGEX [--count N] [--timeout S]
                                 waits (default 60 s: a hang detector, sized for a loaded machine) until N (default 1) messages of the
                                 current main process match REGEX (re.search on the text,
                                 lines joined by '|'); answers the last one
    messages                     every message of the current main process, one a line
    status                       its last STATUS= value
    kill [SIGNAL]                signals the main process (default TERM)
    wait-exit [--timeout S]      waits (default 60 s) for it to end: "exited N" or "killed SIG"
    fdstore                      the stored fds: "NAME" per line, in the order passed
    fdstore-clear                closes every stored fd
    signal-fd NAME               adds 1 to the eventfd stored as NAME, as the kernel signals an
                                 interrupt's trigger (irq/<id>/<v>/latch) or REQ (req/<id>)
    queued NAME                  connections waiting in that socket's accept queue (ss)
    quit                         kills a main process still running (KILL), ends the manager
Every wait ends on an event or its timeout; nothing here sleeps for a fixed time.
"""

import array
import fcntl
import json
import os
import re
import selectors
import signal
import socket
import stat
import struct
import subprocess
import sys
import time

# Every wait's default bound. It only ends a wait that would hang: a daemon under a sanitizer
# on a loaded 2-CPU machine takes seconds to start, so it is far above any normal wait.
WAIT_DEFAULT_S = 60

SD_LISTEN_FDS_START = 3
NOTIFY_BUFFER_MAX = 4096  # PIPE_BUF: systemd 252 reads this much text
NOTIFY_FD_MAX = 768       # systemd 252 takes at most this many fds per message
UCRED = struct.Struct("iII")


class Service:
    """The main process and what systemd keeps for it."""

    def __init__(self, directory, fdstore_max):
        self.dir = directory
        self.fdstore_max = fdstore_max
        self.sockets = []   # (name, fd), socket units' fds, in order
        self.store = []     # (name, fd), the fd store, in the order received
        self.pid = 0        # main process, 0: none
        self.pidfd = -1
        self.exit = None    # "exited N" / "killed SIG" of the last main process
        self.messages = []  # texts of the current main process's messages
        self.status = ""
        self.log = open(os.path.join(directory, "harness.log"), "a", buffering=1)

    def note(self, text):
        self.log.write("%.3f %s\n" % (time.monotonic(), text))

    # ---- sockets

    def listen(self, name, path, mode="660"):
        if os.path.exists(path) and stat.S_ISSOCK(os.lstat(path).st_mode):
            os.unlink(path)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        os.chmod(path, int(mode, 8))
        s.listen(socket.SOMAXCONN)
        fd = s.detach()
        self.sockets.append((name, fd))
        return str(fd)

    def pass_wrong(self, name, kind, path=None):
        if kind == "file":
            fd = os.open("/dev/null", os.O_RDONLY)
        elif kind == "dgram":
            s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            s.bind(path)
            fd = s.detach()
        elif kind == "stream":
            fd = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).detach()
        else:
            raise ValueError("kind is file, dgram or stream, not %r" % kind)
        self.sockets.append((name, fd))
        return str(fd)

    def close(self, name):
        self.close_all(fd for n, fd in self.sockets if n == name)
        self.sockets = [(n, fd) for n, fd in self.sockets if n != name]
        return "ok"

    def queued(self, name):
        fds = [fd for n, fd in self.sockets if n == name]
        if not fds:
            raise ValueError("no socket named %r" % name)
        with socket.socket(fileno=os.dup(fds[0])) as s:
            path = s.getsockname()
        out = subprocess.run(["ss", "-xlnH"], capture_output=True, text=True, check=True)
        for line in out.stdout.splitlines():
            f = line.split()
            if len(f) >= 5 and f[4] == path:
                return f[2]  # Recv-Q of a listening socket: its accept queue
        raise ValueError("%s is not listening" % path)

    # ---- the main process

    def start(self, argv, watchdog_usec=None, journal_stream=False, log=None, env=()):
        if self.pid:
            raise ValueError("the main process %d still runs" % self.pid)
        log = log or os.path.join(self.dir, "service.log")
        passed = self.sockets + self.store
        environ = dict(os.environ)
        for k in ("LISTEN_FDS", "LISTEN_FDNAMES", "LISTEN_PID", "WATCHDOG_USEC",
                  "WATCHDOG_PID", "JOURNAL_STREAM"):
            environ.pop(k, None)
        environ["NOTIFY_SOCKET"] = os.path.join(self.dir, "notify.sock")
        if passed:
            environ["LISTEN_FDS"] = str(len(passed))
            environ["LISTEN_FDNAMES"] = ":".join(n for n, _ in passed)
        if journal_stream:
            st = os.stat(log) if os.path.exists(log) else None
            if st is None:
                open(log, "a").close()
                st = os.stat(log)
            environ["JOURNAL_STREAM"] = "%d:%d" % (st.st_dev, st.st_ino)
        for kv in env:
            k, _, v = kv.partition("=")
            environ[k] = v
        self.messages = []
        self.status = ""
        self.exit = None
        pid = os.fork()
        if pid == 0:
            self._exec_child(argv, environ, [fd for _, fd in passed], log, watchdog_usec)
        self.pid = pid
        self.pidfd = os.pidfd_open(pid)
        self.note("started %d: %s (fds %s)" % (pid, " ".join(argv),
                                                ":".join(n for n, _ in passed)))
        return str(pid)

    @staticmethod
    def _exec_child(argv, environ, fds, log, watchdog_usec):
        try:
            os.setsid()
            devnull = os.open("/dev/null", os.O_RDONLY)
            out = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            os.dup2(devnull, 0)
            os.dup2(out, 1)
            os.dup2(out, 2)
            # Every source out of the way first (a target number may hold another source),
            # then into place from fd 3 on; everything else is closed.
            n = len(fds)
            high = [fcntl.fcntl(fd, fcntl.F_DUPFD, SD_LISTEN_FDS_START + n) for fd in fds]
            for i, fd in enumerate(high):
                os.dup2(fd, SD_LISTEN_FDS_START + i, inheritable=True)
            os.closerange(SD_LISTEN_FDS_START + n, os.sysconf("SC_OPEN_MAX"))
            environ["LISTEN_PID"] = str(os.getpid())  # ours, after fork: sd_listen_fds(3)
            if watchdog_usec:
                environ["WATCHDOG_USEC"] = str(watchdog_usec)
                environ["WATCHDOG_PID"] = str(os.getpid())
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.execve(argv[0], argv, environ)
        except BaseException as e:  # noqa: BLE001 - the child must never return
            os.write(2, ("sdharness: cannot start %s: %s\n" % (argv[0], e)).encode())
        os._exit(127)

    def reap(self):
        _, status = os.waitpid(self.pid, 0)
        if os.WIFSIGNALED(status):
            self.exit = "killed " + signal.Signals(os.WTERMSIG(status)).name
        else:
            self.exit = "exited %d" % os.WEXITSTATUS(status)
        self.note("main process %d: %s" % (self.pid, self.exit))
        os.close(self.pidfd)
        self.pid, self.pidfd = 0, -1

    def kill(self, sig="TERM"):
        if not self.pid:
            raise ValueError("no main process runs")
        os.kill(self.pid, getattr(signal, "SIG" + sig.upper().removeprefix("SIG")))
        return "ok"

    # ---- notifications

    def on_notify(self, sock):
        """Handles one queued message. False when none was queued."""
        fds = array.array("i")
        try:
            data, anc, flags, _ = sock.recvmsg(NOTIFY_BUFFER_MAX,
                                              socket.CMSG_SPACE(NOTIFY_FD_MAX * fds.itemsize) +
                                              socket.CMSG_SPACE(UCRED.size))
        except BlockingIOError:
            return False
        pid = None
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(payload[:len(payload) - len(payload) % fds.itemsize])
            elif level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = UCRED.unpack(payload[:UCRED.size])[0]
        fds = list(fds)
        if flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
            self.note("dropped a truncated message from %s" % pid)
            self.close_all(fds)
            return True
        text = data.decode(errors="replace")
        if not self.pid or pid != self.pid:
            self.note("ignored a message from pid %s (NotifyAccess=main): %r" % (pid, text))
            self.close_all(fds)
            return True
        self.messages.append(text)
        self.note("notify %d (%d fds): %r" % (pid, len(fds), text))
        self.apply(dict(line.partition("=")[::2] for line in text.split("\n") if "=" in line),
                   fds)
        return True

    def apply(self, fields, fds):
        if "STATUS" in fields:
            self.status = fields["STATUS"]
        name = fields.get("FDNAME", "stored")
        if fields.get("FDSTOREREMOVE") == "1":
            self.close_all(fd for n, fd in self.store if n == name)
            self.store = [(n, fd) for n, fd in self.store if n != name]
        if fields.get("FDSTORE") != "1" or not valid_fd_name(name):
            self.close_all(fds)
            return
        for fd in fds:
            if any(same_file(fd, s) for _, s in self.store):
                os.close(fd)  # the first name wins (service_add_fd_store)
            elif len(self.store) >= self.fdstore_max:
                self.note("cannot store more fds than FileDescriptorStoreMax=%d, closing"
                          % self.fdstore_max)
                os.close(fd)
            else:
                self.store.append((name, fd))

    @staticmethod
    def close_all(fds):
        for fd in fds:
            os.close(fd)

    def signal_fd(self, name):
        """Adds 1 to the eventfd stored as NAME, as the kernel signals an interrupt's trigger:
        what a device raises while no daemon runs (the store's copy is the same file)."""
        fds = [fd for n, fd in self.store if n == name]
        if len(fds) != 1:
            raise ValueError("%d stored fds are named %r" % (len(fds), name))
        with open("/proc/self/fdinfo/%d" % fds[0]) as f:
            if "eventfd-count:" not in f.read():
                raise ValueError("%r is not an eventfd" % name)
        os.write(fds[0], (1).to_bytes(8, sys.byteorder))
        return "ok"

    def fdstore_clear(self):
        self.close_all(fd for _, fd in self.store)
        self.store = []
        return "ok"


def valid_fd_name(name):
    return 0 < len(name) <= 255 and all(0x20 <= ord(c) < 0x7f and c != ":" for c in name)


_libc = None


def same_file(a, b):
    """Whether fds a and b are the same open file, as systemd's same_fd() decides: kcmp(2)
    KCMP_FILE. (st_dev/st_ino would call every anonymous-inode file one, e.g. all VFIO device
    fds, and two opens of a character device such as /dev/vfio/vfio one as well.)"""
    global _libc
    if _libc is None:
        import ctypes
        _libc = ctypes.CDLL(None, use_errno=True)
    pid = os.getpid()
    nr = {"x86_64": 312, "aarch64": 272}.get(os.uname().machine)  # SYS_kcmp
    r = _libc.syscall(nr, pid, pid, 0, a, b) if nr else -1  # 0: KCMP_FILE
    if r >= 0:
        return r == 0
    # No kcmp (a kernel without CONFIG_KCMP, such as the test VM's): systemd's fallback, which
    # also compares the file status flags (fd-util.c same_fd(), "to distinguish the read and
    # write side of a pipe"): a one-way data fd or a non-blocking eventfd is then not the
    # group path's O_RDWR VFIO device fd, though all three are the one anonymous inode.
    sa, sb = os.fstat(a), os.fstat(b)
    return ((sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino) and
            not stat.S_ISCHR(sa.st_mode) and not stat.S_ISBLK(sa.st_mode) and
            fcntl.fcntl(a, fcntl.F_GETFL) == fcntl.fcntl(b, fcntl.F_GETFL))


# ---- the manager process: control requests, some of which wait


class Waiter:
    def __init__(self, conn, deadline, check):
        self.conn, self.deadline, self.check = conn, deadline, check


def parse_opts(args, spec):
    """--name VALUE / --flag options before the positional ones (spec: name -> has value)."""
    opts, rest = {}, []
    it = iter(args)
    for a in it:
        if a == "--":
            rest.extend(it)
            break
        if a.startswith("--") and a[2:] in spec:
            key = a[2:].replace("-", "_")
            if not spec[a[2:]]:
                opts[key] = True
            elif key == "env":  # the one option that may repeat
                opts.setdefault(key, []).append(next(it))
            else:
                opts[key] = next(it)
        else:
            rest.append(a)
    return opts, rest


def command(svc, args, conn, waiters):
    """Answers at once (text) or adds a Waiter and answers None."""
    cmd, args = args[0], args[1:]
    if cmd == "listen":
        return svc.listen(*args)
    if cmd == "pass":
        return svc.pass_wrong(*args)
    if cmd == "close":
        return svc.close(*args)
    if cmd == "start":
        opts, argv = parse_opts(args, {"watchdog-usec": True, "journal-stream": False,
                                       "log": True, "env": True})
        return svc.start(argv, opts.get("watchdog_usec"), opts.get("journal_stream", False),
                         opts.get("log"), opts.get("env", []))
    if cmd == "pid":
        if not svc.pid:
            raise ValueError("no main process runs")
        return str(svc.pid)
    if cmd == "messages":
        return "\n".join(m.replace("\n", "|") for m in svc.messages)
    if cmd == "status":
        return svc.status
    if cmd == "kill":
        return svc.kill(*args)
    if cmd == "fdstore":
        return "\n".join(n for n, _ in svc.store)
    if cmd == "fdstore-clear":
        return svc.fdstore_clear()
    if cmd == "signal-fd":
        return svc.signal_fd(*args)
    if cmd == "queued":
        return svc.queued(*args)
    if cmd == "wait-notify":
        opts, rest = parse_opts(args, {"count": True, "timeout": True})
        regex, count = re.compile(rest[0]), int(opts.get("count", 1))

        def check():
            hits = [m for m in svc.messages if regex.search(m.replace("\n", "|"))]
            return hits[count - 1].replace("\n", "|") if len(hits) >= count else None
        waiters.append(Waiter(conn, time.monotonic() + float(opts.get("timeout", WAIT_DEFAULT_S)), check))
        return None
    if cmd == "wait-exit":
        opts, _ = parse_opts(args, {"timeout": True})
        waiters.append(Waiter(conn, time.monotonic() + float(opts.get("timeout", WAIT_DEFAULT_S)),
                              lambda: svc.exit if not svc.pid else None))
        return None
    raise ValueError("unknown command %r" % cmd)


def reply(conn, ok, text):
    try:
        conn.sendall((json.dumps({"ok": ok, "text": text}) + "\n").encode())
    finally:
        conn.close()


def serve(directory, fdstore_max):
    svc = Service(directory, fdstore_max)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    notify.bind(os.path.join(directory, "notify.sock"))
    notify.setblocking(False)
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control_path = os.path.join(directory, "control.sock")
    control.bind(control_path + ".new")
    control.listen(16)
    os.rename(control_path + ".new", control_path)  # appears when it accepts
    sel = selectors.DefaultSelector()
    sel.register(notify, selectors.EVENT_READ, "notify")
    sel.register(control, selectors.EVENT_READ, "control")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    waiters, quitting = [], False
    try:
        while not quitting:
            timeout = min((w.deadline for w in waiters), default=None)
            timeout = None if timeout is None else max(0, timeout - time.monotonic())
            for key, _ in sel.select(timeout):
                if key.data == "notify":
                    svc.on_notify(notify)
                elif key.data == "pidfd":
                    # What it sent before it exited is still queued: read it as its own
                    # (systemd does the same), not as a stranger's once its pid is gone.
                    while svc.on_notify(notify):
                        pass
                    sel.unregister(key.fileobj)
                    svc.reap()
                elif key.data == "control":
                    conn, _ = control.accept()
                    conn.settimeout(10)
                    args = json.loads(conn.makefile().readline())
                    if args == ["quit"]:
                        quitting = True
                        reply(conn, True, "ok")
                        continue
                    try:
                        text = command(svc, args, conn, waiters)
                        if args[0] == "start":
                            sel.register(svc.pidfd, selectors.EVENT_READ, "pidfd")
                        if text is not None:
                            reply(conn, True, text)
                    except Exception as e:  # noqa: BLE001 - every failure is an answer
                        reply(conn, False, "%s: %s" % (type(e).__name__, e))
            now = time.monotonic()
            for w in list(waiters):
                result = w.check()
                if result is not None or now >= w.deadline:
                    waiters.remove(w)
                    reply(w.conn, result is not None,
                          result if result is not None else "timeout")
    finally:
        if svc.pid:
            os.kill(svc.pid, signal.SIGKILL)
            os.waitpid(svc.pid, 0)
        svc.note("quit")


def ctl(directory, args):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(os.path.join(directory, "control.sock"))
    s.sendall((json.dumps(args) + "\n").encode())
    answer = json.loads(s.makefile().readline())
    if answer["ok"]:
        if answer["text"]:
            print(answer["text"])
        return 0
    print("sdharness: " + answer["text"], file=sys.stderr)
    return 1


def main(argv):
    if len(argv) >= 3 and argv[1] == "serve":
        opts, _ = parse_opts(argv[3:], {"fdstore-max": True})
        serve(argv[2], int(opts.get("fdstore_max", 0)))
        return 0
    if len(argv) >= 4 and argv[1] == "ctl":
        return ctl(argv[2], argv[3:])
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
