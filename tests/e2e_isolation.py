"""What each process holds and may do: TLS ciphers and the key file's
owner, the seccomp filters under job control and their argument checks,
the pre-login deadline, the descriptors of the children, passwords and
the TLS key in the memory of the processes that must not have them, and
the maildrop process's Landlock rule."""

import os
import re
import signal
import socket
import ssl
import subprocess
import time

import pop3test as pt
from pop3test import Pop3TestCase, plain_mbox, password, proc_comm, proc_stat
from e2e_tls import TlsCase, b64, openssl
from e2e_hardening import fds

CRASHTEST = os.path.join(pt.TOP_DIR, "pop3d-crashtest")


class RsaPair:
    """An RSA key pair (static RSA suites need one) and its secret
    numbers, to look for in process memory."""

    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = RsaPair(pt.Env.get())
        return cls._instance

    def __init__(self, env):
        d = env.new_dir("rsa", 0o755)
        self.key = os.path.join(d, "key.pem")
        self.cert = os.path.join(d, "cert.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                "-out", self.cert, "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "30")
        os.chmod(self.key, 0o600)
        text = openssl("rsa", "-in", self.key, "-noout", "-text").stdout.decode()
        self.prime1 = self.number(text, "prime1")
        # a line from the middle of the PEM text
        pem = open(self.key).read().splitlines()
        self.pem_line = pem[len(pem) // 2].encode()

    @staticmethod
    def number(text, name):
        m = re.search(r"^%s:\n((?:\s+[0-9a-f:]+\n)+)" % name, text, re.M)
        digits = re.sub(r"[^0-9a-f]", "", m.group(1))
        return bytes.fromhex(digits).lstrip(b"\0")


class Ciphers(TlsCase):

    def setUp(self):
        super().setUp()
        self.rsa = RsaPair.get()

    def s_client(self, port, cipher):
        argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_2",
                "-cipher", cipher + "@SECLEVEL=0", "-CAfile", self.rsa.cert,
                "-ign_eof", "-crlf"]
        return self.run_tool(argv, input=b"QUIT\n", timeout=30)

    def test_static_rsa_and_cbc_sha_refused_ecdhe_gcm_works(self):
        srv = self.tls_server(implicit=True, key=self.rsa.key, cert=self.rsa.cert)
        for cipher in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256",
                       "CAMELLIA128-SHA"):
            p = self.s_client(srv.port, cipher)
            self.assertNotIn(b"+OK pop3d ready", p.stdout, cipher)
        p = self.s_client(srv.port, "ECDHE-RSA-AES128-GCM-SHA256")
        self.assertIn(b"+OK pop3d ready", p.stdout, p.stderr)
        self.assertRegex(p.stdout, rb"Cipher\s*: ECDHE-RSA-AES128-GCM-SHA256\n")
        self.assertCleanExit(srv, count=5)


class KeyOwner(TlsCase):

    def key_of(self, uid):
        path = os.path.join(self.spool, "key-%d.pem" % uid)
        with open(self.tls.key, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        os.chown(path, uid, 0)
        os.chmod(path, 0o600)
        return path

    def test_key_not_owned_by_root_refused(self):
        key = self.key_of(pt.uid_of("alice"))
        rc, err = self.check_config("-c", self.tls.cert, "-k", key)
        self.assertEqual(rc, 1, err)
        self.assertIn("key file must be owned by root", err)
        srv = self.tls_server(implicit=True, key=key)
        c = self.connect(srv, greeting=False)
        data, closed = self.read_to_close(c, timeout=10)
        self.assertEqual((data, closed), (b"", True))
        self.assertTrue(srv.wait_idle())
        self.assertIn("key file must be owned by root", srv.log())
        rc, err = self.check_config("-c", self.tls.cert, "-k", self.key_of(0))
        self.assertEqual((rc, err.strip()), (0, ""))


def syscall_nr(pid):
    """The number of the system call pid is blocked in, or None."""
    try:
        with open("/proc/%d/syscall" % pid) as f:
            first = f.read().split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None
    return int(first) if first.lstrip("-").isdigit() else None


class ChildCase(Pop3TestCase):

    def pid_of(self, comm, srv=None):
        for pid in (srv or self.srv).pids():
            try:
                if proc_comm(pid) == comm:
                    return pid
            except FileNotFoundError:
                pass
        self.fail("no %s process" % comm)

    def wait_for(self, what, cond, timeout=10.0):
        deadline = time.monotonic() + timeout
        while not cond():
            self.assertLess(time.monotonic(), deadline, "waiting for " + what)
            time.sleep(0.01)

    def wait_log(self, srv, text, timeout=10.0):
        self.wait_for(repr(text), lambda: text in srv.log(), timeout)

    def crash_server(self, env, **kw):
        self.assertTrue(os.access(CRASHTEST, os.X_OK), "make pop3d-crashtest first")
        return self.server(binary=CRASHTEST, env=env, **kw)


class Seccomp(ChildCase):

    POLL, RECVMSG = 7, 47       # x86_64 system call numbers

    def test_children_survive_stop_and_continue(self):
        self.put_mbox(plain_mbox(3))
        c = self.login()
        self.assertEqual(c.cmd("NOOP"), "+OK")
        session = self.pid_of("pop3d: session")
        maildrop = self.pid_of("pop3d: maildrop")
        # idle: the session in poll (its timeout restarts through
        # restart_syscall), the maildrop process in recvmsg
        self.wait_for("session in poll", lambda: syscall_nr(session) == self.POLL)
        self.wait_for("maildrop in recvmsg", lambda: syscall_nr(maildrop) == self.RECVMSG)
        for pid in (session, maildrop):
            os.kill(pid, signal.SIGSTOP)
        for pid in (session, maildrop):
            self.wait_for("stopped", lambda: proc_stat(pid)[0] == "T")
        for pid in (session, maildrop):
            os.kill(pid, signal.SIGCONT)
        for pid in (session, maildrop):
            self.wait_for("continued", lambda: proc_stat(pid) is None or
                          proc_stat(pid)[0] != "T")
        self.assertEqual(c.cmd("NOOP"), "+OK")
        self.assertEqual(c.cmd("DELE 1"), "+OK message 1 deleted")
        self.quit(c, "+OK pop3d signing off (2 messages left)")
        self.assertNotIn("process killed signal=", self.srv.log())

    def escape(self, what, survives=False, sandbox=True):
        env = {"POP3D_TEST_SANDBOX_ESCAPE": what}
        if not sandbox:
            env["POP3D_TEST_NO_SANDBOX"] = "1"
        srv = self.crash_server(env)
        self.put_mbox(plain_mbox(1))
        who, how = what.split(":")
        if who == "session":
            c = self.connect(greeting=False)
            if survives:
                self.assertTrue(c.readline().startswith(pt.GREETING))
                self.assertReply(c.cmd("QUIT"), "+OK")
            else:
                self.assertTrue(c.expect_closed(), "the session process survived")
        else:
            c = self.connect()
            c.cmd("USER alice")
            r = c.cmd("PASS " + password("alice"))
            if survives:
                self.assertReply(r, "+OK maildrop has 1 message (")
            else:
                self.assertReply(r, "-ERR [SYS/TEMP] maildrop unavailable")
            c.close()
        c.close()
        self.assertTrue(srv.wait_idle())
        log = srv.log()
        self.assertIn("[%s] test build: trying %s" % (who, how), log)
        if survives:
            self.assertIn("test build: %s survived" % how, log)
        else:
            self.assertIn("%s process killed signal=31" % who, log)
            self.assertNotIn("survived", log)

    def test_executable_mmap_kills_session(self):
        self.escape("session:mmap-exec")

    def test_executable_mprotect_kills_session(self):
        self.escape("session:mprotect-exec")

    def test_executable_mmap_kills_maildrop(self):
        self.escape("maildrop:mmap-exec")

    def test_executable_mmap_without_sandbox_survives(self):
        # the control: the hook does map executable memory
        self.escape("session:mmap-exec", survives=True, sandbox=False)
        self.escape("maildrop:mmap-exec", survives=True, sandbox=False)


class LoginGrace(ChildCase):
    """-t 3 makes the pre-login deadline 3 s (min(-t, LOGIN_GRACE))."""

    def keep_busy(self, c, verb, seconds):
        """Sends verb every 0.5 s (each answered) for up to seconds;
        returns the time until the server closed, or None."""
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            try:
                r = c.cmd(verb)
            except (pt.Closed, OSError):
                return time.monotonic() - start
            if r.startswith("-ERR login time"):
                self.assertTrue(c.expect_closed())
                return time.monotonic() - start
            if verb == "CAPA":
                c.read_until_dot()
            time.sleep(0.5)
        return None

    def test_capa_now_and_then_does_not_hold_the_connection(self):
        self.server(timeout=3)
        c = self.connect()
        took = self.keep_busy(c, "CAPA", 12)
        self.assertIsNotNone(took, "still open after 12 s of CAPA")
        self.assertGreater(took, 2)
        self.assertLess(took, 8)
        c.close()
        self.assertTrue(self.srv.wait_idle())
        log = self.srv.log()
        self.assertEqual(log.count('[session] session ended before login '
                                   'reason="login-timed-out seconds=3"'), 1, log)
        self.assertEqual(log.count("[session]"), 1, log)

    def test_user_without_pass_cut_too(self):
        self.server(timeout=3)
        c = self.connect()
        self.assertEqual(c.cmd("USER alice"), "+OK send PASS")
        self.assertIsNotNone(self.keep_busy(c, "USER alice", 12))
        c.close()
        self.assertTrue(self.srv.wait_idle())

    def test_no_deadline_after_login(self):
        self.put_mbox(plain_mbox(1))
        self.server(timeout=3)
        c = self.login()
        # past the 3 s of the login, each command still resets -t
        self.assertIsNone(self.keep_busy(c, "NOOP", 5))
        self.quit(c)


class IndexGrowth(Pop3TestCase):

    def test_million_message_login(self):
        # the generator of e2e_hardening's 1000001-message test, at the
        # limit: the session process used to grow its index one batch at
        # a time, which copies it a thousand times where realloc cannot
        # move pages (the sanitizer build spun for minutes)
        n = 1000000
        self.put_mbox(b"From a@b Mon Jan  1 00:00:00 2024\n" * n)
        c = self.connect()
        c.sock.settimeout(60)
        c.cmd("USER alice")
        start = time.monotonic()
        r = c.cmd("PASS " + password("alice"))
        took = time.monotonic() - start
        self.assertEqual(r, "+OK maildrop has %s (0 octets)" % pt.messages(n))
        self.assertLess(took, 60)
        self.assertEqual(c.cmd("LIST %d" % n), "+OK %d 0" % n)
        self.quit(c)


# Runs the rest of the command line in a mount namespace of its own whose
# /dev is a tmpfs with the host's null, zero, random and urandom and, as
# /dev/log, the socket $1: the host's /dev is never touched.
SYSLOG_NS = r"""
set -e
sock=$1 old=$2
shift 2
mount --bind /dev "$old"
mount -t tmpfs -o mode=0755 tmpfs /dev
for n in null zero random urandom; do
	touch /dev/$n
	mount --bind "$old/$n" /dev/$n
done
touch /dev/log
mount --bind "$sock" /dev/log
umount -l "$old"
exec "$@"
"""


class SyslogServer(pt.Server):
    """pop3d without -d, logging to a /dev/log socket of the test's."""

    def __init__(self, args, logdir, binary=None, env=None):
        self.host = "127.0.0.1"
        self.port = pt.free_port()
        self.sock_path = os.path.join(logdir, "dev-log")
        self.syslog = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.syslog.bind(self.sock_path)
        self.syslog.settimeout(0)
        self.lines = []
        old = os.path.join(logdir, "old-dev")
        os.mkdir(old)
        self.log_path = os.path.join(logdir, "pop3d-%d.log" % self.port)
        self.logf = open(self.log_path, "wb")
        setenv = []
        for k, v in (env or {}).items():
            setenv += ["-E", "%s=%s" % (k, v)]
        self.proc = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", SYSLOG_NS, "sh",
             self.sock_path, old, "systemd-socket-activate", "--accept", "--inetd",
             "-l", "127.0.0.1:%d" % self.port] + setenv + [binary or pt.POP3D] + args,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.logf)
        deadline = time.monotonic() + 10
        while not pt.listening(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("no listener: " + pt.Server.log(self))
            time.sleep(0.02)

    def pids(self):
        # below unshare: sh has exec'd systemd-socket-activate
        return pt.descendants(self.proc.pid)

    def syslog_text(self):
        while True:
            try:
                self.lines.append(self.syslog.recv(4096).decode("utf-8", "replace"))
            except BlockingIOError:
                return "\n".join(self.lines)

    def log(self):
        return pt.Server.log(self) + "\n" + self.syslog_text()

    def stop(self):
        leftover = pt.Server.stop(self)
        self.syslog.close()
        return leftover


class Descriptors(ChildCase):

    def syslog_server(self, binary=None, env=None):
        s = SyslogServer(self.default_args(), self.logdir, binary, env)
        self.servers.append(s)
        self._srv = s
        return s

    def assertOnly(self, pid, expect_sockets, files=()):
        """pid holds /dev/null as 0-2 (or the client socket as 0 and 1),
        expect_sockets other sockets, and no file but those in files."""
        f = fds(pid)
        other = {n: t for n, t in f.items() if n > 2}
        sockets = [n for n, t in other.items() if t.startswith("socket:")]
        self.assertEqual(len(sockets), expect_sockets, f)
        self.assertEqual(f[2], "/dev/null", f)
        for n, t in other.items():
            if not t.startswith("socket:"):
                self.assertIn(t, files, "descriptor %d: %r" % (n, f))
        return f

    def test_children_hold_only_their_descriptors(self):
        self.put_mbox(plain_mbox(2))
        srv = self.syslog_server()
        c = self.connect()
        session = self.pid_of("pop3d: session")
        f = self.assertOnly(session, 1)
        self.assertTrue(f[0].startswith("socket:") and f[0] == f[1], f)
        self.assertEqual(len(f), 4, f)
        c.cmd("USER alice")
        self.assertReply(c.cmd("PASS " + password("alice")), "+OK maildrop has 2")
        maildrop = self.pid_of("pop3d: maildrop")
        monitor = self.pid_of("pop3d: monitor")
        # the monitor logs to the test's /dev/log: its socket is there
        self.wait_for("the login line", lambda: "login user=alice" in srv.syslog_text())
        self.assertEqual(len([t for t in fds(monitor).values() if t.startswith("socket:")]),
                         3, fds(monitor))
        # the session: client, monitor and maildrop channels, the mailbox
        self.assertEqual(len(self.assertOnly(session, 2, [self.mbox_path()])), 6)
        # the maildrop process: its two channels, its mailbox and directory
        f = self.assertOnly(maildrop, 2, [self.mbox_path(), self.spool])
        self.assertEqual((f[0], f[1]), ("/dev/null", "/dev/null"), f)
        self.quit(c)
        text = srv.syslog_text()
        # the children's lines reach syslog only through the monitor
        self.assertRegex(text, r"pop3d\[\d+\]: \[session\] logout user=alice")
        self.assertNotIn("[session]", pt.Server.log(srv))

    def test_a_leaked_descriptor_is_fatal(self):
        srv = self.crash_server({"POP3D_TEST_LEAK_FD": "1"})
        c = self.connect(greeting=False)
        self.assertTrue(c.expect_closed())
        c.close()
        self.assertTrue(srv.wait_idle())
        self.assertRegex(srv.log(), r"\[session\] descriptor \d+ is open and should not be")
        self.assertIn("session process failed status=1", srv.log())


def memory_holds(pid, needles):
    """The needles (bytes) found anywhere in the readable memory of pid,
    read as root through /proc/PID/mem."""
    found = set()
    with open("/proc/%d/maps" % pid) as f:
        maps = f.read().splitlines()
    with open("/proc/%d/mem" % pid, "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            if fields[1][0] != "r" or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if end - start >= (1 << 40) and len(fields) == 5:
                # a sanitizer build's shadow memory: terabytes, mostly
                # never touched, and it holds only the sanitizer's
                # marks of the program's bytes, never the bytes
                continue
            # in chunks, overlapping by the longest needle
            chunk, overlap = 1 << 24, max(len(n) for n in needles)
            for pos in range(start, end, chunk):
                try:
                    mem.seek(pos)
                    data = mem.read(min(chunk + overlap, end - pos))
                except (OSError, MemoryError):
                    data = b""
                for n in needles:
                    if n in data:
                        found.add(n)
    return found


class Secrets(ChildCase, TlsCase):
    """What a process that is not meant to have it still holds after the
    login: the password, the TLS private key."""

    def processes(self):
        return {name: self.pid_of("pop3d: " + name)
                for name in ("monitor", "session", "maildrop")}

    def test_password_gone_after_login(self):
        self.put_mbox(plain_mbox(2))
        pw = password("alice").encode()
        # the password, and the SASL response the client sent
        needles = [pw, b64(b"\0alice\0" + pw).encode()]
        for how in ("pass", "sasl", "sasl-continued"):
            with self.subTest(how=how):
                c = self.connect()
                if how == "pass":
                    c.cmd("USER alice")
                    r = c.cmd("PASS " + pw.decode())
                elif how == "sasl":
                    r = c.cmd("AUTH PLAIN " + b64(b"\0alice\0" + pw))
                else:
                    self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
                    r = c.cmd(b64(b"\0alice\0" + pw))
                try:
                    self.assertReply(r, "+OK maildrop has 2 messages")
                    self.assertEqual(c.cmd("NOOP"), "+OK")
                    # the session needed it, but not once the login is done
                    held = [name for name, pid in self.processes().items()
                            if memory_holds(pid, needles)]
                    self.assertEqual(held, [], "processes holding the password")
                    self.quit(c)
                finally:
                    c.close()

    def test_password_gone_after_login_over_tls(self):
        # the same over TLS, where libtls's buffers see it first
        rsa = RsaPair.get()
        self.put_user_mbox("alice", plain_mbox(1))
        srv = self.tls_server(implicit=True, key=rsa.key, cert=rsa.cert)
        c = self.connect_tls(srv, ssl.create_default_context(cafile=rsa.cert))
        c.cmd("USER alice")
        self.assertReply(c.cmd("PASS " + password("alice")), "+OK maildrop has 1")
        self.assertEqual(c.cmd("NOOP"), "+OK")
        held = [name for name, pid in self.processes().items()
                if memory_holds(pid, [password("alice").encode()])]
        self.assertEqual(held, [], "processes holding the password")
        self.quit(c)

    def test_tls_key_only_in_the_session(self):
        rsa = RsaPair.get()
        self.put_user_mbox("alice", plain_mbox(1))
        srv = self.tls_server(implicit=True, cleartext=True, key=rsa.key, cert=rsa.cert)
        c = self.connect_tls(srv, ssl.create_default_context(cafile=rsa.cert))
        c.cmd("USER alice")
        self.assertReply(c.cmd("PASS " + password("alice")), "+OK maildrop has 1")
        p = rsa.prime1
        # a prime as the key file has it (big-endian) and as a BIGNUM
        # holds it in memory (little-endian words), and a line of the PEM
        needles = {"PEM": rsa.pem_line, "DER prime": p[32:64],
                   "BIGNUM prime": p[::-1][32:64]}
        procs = self.processes()
        held = memory_holds(procs["session"], needles.values())
        # the control: libtls keeps the key in the session, and the search
        # finds it there
        self.assertIn(needles["BIGNUM prime"], held)
        for name in ("monitor", "maildrop"):
            held = memory_holds(procs[name], needles.values())
            self.assertEqual([k for k, v in needles.items() if v in held], [],
                             "the %s process holds the key" % name)
        self.quit(c)


class Landlock(ChildCase):
    """-m %h/mbox: the maildrop process may read its mbox, and no other
    file of the directory it is in, nor below it."""

    def test_only_the_mbox_readable_in_its_directory(self):
        uid, gid = pt.USERS["alice"][1], pt.USERS["alice"][2]
        home = self.env.new_dir("home", 0o700, uid, gid)
        sub = os.path.join(home, "sub")
        os.mkdir(sub, 0o700)
        os.chown(sub, uid, gid)
        secrets = [os.path.join(home, "secret"), os.path.join(sub, "secret")]
        for path in secrets:
            pt.write_mailbox(path, b"the user's own file\n")
        mbox = os.path.join(home, "alice")
        pt.write_mailbox(mbox, plain_mbox(3))
        probe = secrets + [mbox]
        srv = self.crash_server({"POP3D_TEST_OPEN_PROBE": ":".join(probe)},
                                maildrop=os.path.join(home, "%u"))
        c = self.login()
        # it still does its work there: dot-lock, journal, commit
        self.assertEqual(c.cmd("DELE 2"), "+OK message 2 deleted")
        self.quit(c, "+OK pop3d signing off (2 messages left)")
        log = srv.log()
        for path in secrets:
            self.assertIn("[maildrop] test build: open %s: Permission denied" % path, log)
        # the control: the probe does open what it may
        self.assertIn("[maildrop] test build: open %s: opened" % mbox, log)
        self.assertEqual(sorted(os.listdir(home)), ["alice", "secret", "sub"])
        self.assertEqual(len(pt.parse_mbox(pt.read_file(mbox))), 2)
