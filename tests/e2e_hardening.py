"""Hardening: the sandboxes as /proc shows them, a sandbox escape killed by
the filter, and clients that abuse the limits in params.h."""

import os
import socket
import subprocess
import threading
import time

import pop3test
from pop3test import (Pop3TestCase, plain_mbox, msg, mbox_bytes, from_line, password,
                      proc_status, proc_comm, read_file, TOP_DIR)

CRASHTEST = os.path.join(TOP_DIR, "pop3d-crashtest")


def fds(pid):
    """{fd: link target} of a process."""
    d = "/proc/%d/fd" % pid
    out = {}
    for name in os.listdir(d):
        try:
            out[int(name)] = os.readlink(os.path.join(d, name))
        except FileNotFoundError:
            pass
    return out


def fd_flags(pid, fd):
    with open("/proc/%d/fdinfo/%d" % (pid, fd)) as f:
        for line in f:
            if line.startswith("flags:"):
                return int(line.split()[1], 8)
    return None


def vm_kb(pid, key):
    return int(proc_status(pid)[key].split()[0])


class Sandbox(Pop3TestCase):

    def pid_of(self, comm):
        for pid in self.srv.pids():
            try:
                if proc_comm(pid) == comm:
                    return pid
            except FileNotFoundError:
                pass
        self.fail("no %s process" % comm)

    def assertConfined(self, pid):
        st = proc_status(pid)
        self.assertEqual(st["Seccomp"], "2", "not in seccomp filter mode")
        self.assertEqual(st["NoNewPrivs"], "1")
        for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            self.assertEqual(int(st[cap], 16), 0, "%s: %s" % (cap, st[cap]))

    def test_session_before_login(self):
        c = self.connect()
        self.assertEqual(c.cmd("NOOP"), "-ERR command not valid in this state")
        session = self.pid_of("pop3d: session")
        self.assertConfined(session)
        f = fds(session)
        # the client (0 and 1), /dev/null as stderr, the monitor's socket
        self.assertEqual(len(f), 4, "descriptors: %r" % f)
        self.assertEqual(sorted(f)[:3], [0, 1, 2], "descriptors: %r" % f)
        self.assertEqual(f[2], "/dev/null")
        self.assertTrue(f[0].startswith("socket:"), f)
        self.assertEqual(f[0], f[1])
        self.assertTrue(f[sorted(f)[3]].startswith("socket:"), f)
        self.assertNotEqual(f[sorted(f)[3]], f[0])
        self.quit(c)

    def test_session_after_login(self):
        self.put_mbox(plain_mbox(3))
        c = self.login()
        session = self.pid_of("pop3d: session")
        self.assertConfined(session)
        f = fds(session)
        self.assertEqual(len(f), 6, "descriptors: %r" % f)
        sockets = [n for n, t in f.items() if t.startswith("socket:")]
        # client (0, 1), monitor and maildrop channels
        self.assertEqual(len(sockets), 4, f)
        files = [n for n, t in f.items() if t == self.mbox_path()]
        self.assertEqual(len(files), 1, "no mailbox descriptor: %r" % f)
        self.assertEqual(fd_flags(session, files[0]) & os.O_ACCMODE,
                         os.O_RDONLY, "mailbox descriptor is writable")
        self.quit(c)

    def test_maildrop_confined(self):
        self.put_mbox(plain_mbox(2))
        c = self.login()
        maildrop = self.pid_of("pop3d: maildrop")
        self.assertConfined(maildrop)
        # the monitor alone keeps its capabilities, and never the client
        monitor = self.pid_of("pop3d: monitor")
        self.assertNotEqual(int(proc_status(monitor)["CapEff"], 16), 0)
        for n, t in fds(monitor).items():
            self.assertNotEqual(t, fds(self.pid_of("pop3d: session"))[0],
                                "monitor holds the client socket as fd %d" % n)
        self.quit(c)

    def test_open_after_sandbox_kills_session(self):
        # the test build tries open("/etc/passwd") right after the sandbox
        self.assertTrue(os.access(CRASHTEST, os.X_OK), "make pop3d-crashtest first")
        log = os.path.join(self.logdir, "escape.log")
        port = pop3test.free_port()
        with open(log, "wb") as lf:
            proc = subprocess.Popen(
                ["systemd-socket-activate", "--accept", "--inetd",
                 "-E", "POP3D_TEST_SANDBOX_ESCAPE=1",
                 "-l", "127.0.0.1:%d" % port, CRASHTEST, "-d", "-P",
                 "-a", self.env.passwd, "-m", os.path.join(self.spool, "%u")],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=lf)
        try:
            deadline = time.monotonic() + 10
            while not pop3test.listening(port):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.02)
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            self.assertEqual(s.recv(100), b"", "the session process survived")
            s.close()
            deadline = time.monotonic() + 10
            text = ""
            while "died with code" not in text and time.monotonic() < deadline:
                time.sleep(0.05)
                text = open(log, "rb").read().decode("utf-8", "replace")
        finally:
            proc.terminate()
            proc.wait(5)
        self.assertIn("session process killed signal=31", text)
        self.assertRegex(text, r"Child \d+ died with code 1")


class Limits(Pop3TestCase):

    def session_pid(self):
        for pid in self.srv.pids():
            try:
                if proc_comm(pid) == "pop3d: session":
                    return pid
            except FileNotFoundError:
                pass
        return None

    def test_byte_a_second_client_is_cut(self):
        # -t 3: the bytes keep coming, but never a whole command
        self.server(timeout=3)
        c = self.connect()
        start = time.monotonic()
        closed = False
        while time.monotonic() - start < 12:
            try:
                c.send(b"N")
            except OSError:
                closed = True
                break
            c.sock.settimeout(0.5)
            try:
                if c.sock.recv(100) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except ConnectionResetError:
                # the goodbye came while a byte was on its way
                closed = True
                break
        took = time.monotonic() - start
        self.assertTrue(closed, "still open after %.1f s of trickling" % took)
        self.assertLess(took, 8)
        self.assertGreater(took, 2)
        c.close()
        self.assertTrue(self.srv.wait_idle(10))

    def test_client_that_never_reads_retr(self):
        body = (b"y" * 99 + b"\n") * 60000        # 6 MB
        self.put_mbox(mbox_bytes([(from_line(1), msg(1, b"big", body))]))
        self.server(timeout=3)
        c = self.connect(greeting=False)
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        c.readline()
        c.cmd("USER alice")
        self.assertTrue(c.cmd("PASS " + password("alice")).startswith("+OK"))
        c.send("RETR 1\r\n")
        time.sleep(1)
        session = self.session_pid()
        self.assertIsNotNone(session)
        # blocked on the write, its memory is its buffers, not the message
        self.assertLess(vm_kb(session, "VmHWM"), 32 * 1024)
        self.assertTrue(self.srv.wait_idle(12),
                        "session not ended though the client reads nothing")
        self.assertIn("reason=connection-lost", self.srv.log())
        c.close()

    def test_million_pipelined_commands(self):
        self.put_mbox(plain_mbox(1))
        c = self.login()
        n = 1000000
        got = {"ok": 0}
        hwm = {}

        def reader():
            buf = b""
            c.sock.settimeout(60)
            while got["ok"] < n:
                chunk = c.sock.recv(1 << 16)
                if not chunk:
                    break
                buf += chunk
                lines = buf.split(b"\r\n")
                buf = lines.pop()
                got["ok"] += sum(1 for l in lines if l == b"+OK")
        session = self.session_pid()
        t = threading.Thread(target=reader)
        t.start()
        chunk = b"NOOP\r\n" * 10000
        for _ in range(n // 10000):
            c.sock.sendall(chunk)
        t.join(120)
        hwm["session"] = vm_kb(session, "VmHWM")
        self.assertEqual(got["ok"], n)
        self.assertLess(hwm["session"], 32 * 1024, "session memory grew")
        self.quit(c)

    def test_too_many_messages_refused_untouched(self):
        # MAX_MESSAGES is a million: one more is refused, the file kept
        data = b"From a@b Mon Jan  1 00:00:00 2024\n" * 1000001
        self.put_mbox(data)
        before = read_file(self.mbox_path())
        c = self.connect()
        c.cmd("USER alice")
        r = c.cmd("PASS " + password("alice"))
        self.assertTrue(r.startswith("-ERR [SYS/PERM]"), r)
        self.assertTrue(c.expect_closed())
        self.assertEqual(read_file(self.mbox_path()), before)
        self.assertIn("maildrop too large", self.srv.log())
