"""What an admin installs and runs: make install and uninstall, and the
service files in etc/ under the real super-servers of Debian 12
(openbsd-inetd, xinetd, systemd's socket activation), each started with
the shipped file, only its ports and paths changed, and mail fetched
through it with curl over STLS and implicit TLS.

The shipped files use the system accounts and /var/mail: the servers run
in a mount namespace of their own where /etc/passwd, /etc/shadow,
/etc/group and /var/mail are the test's copies with one more user, so
that the files are tested as they are and the host is left alone."""

import functools
import glob
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import pop3test as pt
from e2e_tls import TlsCase

TOP = pt.TOP_DIR
ETC = os.path.join(TOP, "etc")
XINETD = shutil.which("xinetd") or "/var/cache/pop3d-tests/xinetd/usr/sbin/xinetd"

BIN = "/usr/local/sbin/pop3d"
CERT = "/etc/letsencrypt/live/mail.example.org/fullchain.pem"
KEY = "/etc/letsencrypt/live/mail.example.org/privkey.pem"

SVC_USER, SVC_UID, SVC_PW = "pop3svc", 61050, "pop3svc-pw-1729"

# what make install puts under DESTDIR, PREFIX /usr/local
INSTALLED = sorted([
    "usr/local/sbin/pop3d",
    "usr/local/share/man/man8/pop3d.8",
    "usr/local/share/examples/pop3d/inetd.conf",
    "usr/local/share/examples/pop3d/xinetd.pop3d",
    "usr/local/share/examples/pop3d/systemd/pop3d.socket",
    "usr/local/share/examples/pop3d/systemd/pop3d@.service",
    "usr/local/share/examples/pop3d/systemd/pop3s.socket",
    "usr/local/share/examples/pop3d/systemd/pop3s@.service",
    "usr/local/share/examples/pop3d/fail2ban/filter.d/pop3d.conf",
    "usr/local/share/examples/pop3d/fail2ban/jail.d/pop3d-systemd.conf",
    "usr/local/share/examples/pop3d/fail2ban/jail.d/pop3d-logfile.conf",
    "usr/local/share/examples/pop3d/systemd/pop3d-backend.socket",
    "usr/local/share/examples/pop3d/systemd/pop3d-backend@.service",
    "usr/local/share/examples/pop3d/nginx/pop3d-proxy.conf",
    "usr/local/share/examples/pop3d/haproxy/pop3d.cfg",
])

UNITS = ["pop3d.socket", "pop3d@.service", "pop3s.socket", "pop3s@.service",
         "pop3d-backend.socket", "pop3d-backend@.service"]
SERVICES = ["pop3d@.service", "pop3s@.service", "pop3d-backend@.service"]


def shipped(name):
    with open(os.path.join(ETC, name)) as f:
        return f.read()


def files_under(root):
    out = []
    for d, _, names in os.walk(root):
        out += [os.path.relpath(os.path.join(d, n), root) for n in names]
    return sorted(out)


def make(*args):
    return subprocess.run(["make", "-s", "-C", TOP] + list(args), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=300)


def unit_settings(text):
    """KEY=VALUE lines of a unit, comments left out: {key: [values]}."""
    out = {}
    for line in text.splitlines():
        m = re.match(r"^([A-Za-z]+)=(.*)$", line)
        if m:
            out.setdefault(m.group(1), []).append(m.group(2))
    return out


class Install(pt.Pop3TestCase):

    def test_install_and_uninstall(self):
        dest = tempfile.mkdtemp(prefix="pop3d-destdir-")
        self.addCleanup(shutil.rmtree, dest, True)
        p = make("install", "DESTDIR=" + dest)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(files_under(dest), INSTALLED)
        self.assertFalse(os.path.exists(os.path.join(dest, "etc")), "make install wrote /etc")
        mode = lambda f: os.stat(os.path.join(dest, f)).st_mode & 0o7777  # noqa: E731
        self.assertEqual(mode("usr/local/sbin/pop3d"), 0o755)
        for f in INSTALLED[1:]:
            self.assertEqual(mode(f), 0o644, f)
        # the examples as shipped (their binary is where this install put it)
        for f in INSTALLED:
            if "/examples/pop3d/" in f:
                with open(os.path.join(dest, f)) as g:
                    self.assertEqual(g.read(), shipped(f.split("/examples/pop3d/")[1]), f)
        p = make("uninstall", "DESTDIR=" + dest)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(files_under(dest), [])
        self.assertFalse(os.path.exists(os.path.join(dest, "usr/local/share/examples/pop3d")))

    def test_install_gnu_and_bsd_directories(self):
        dest = tempfile.mkdtemp(prefix="pop3d-destdir-")
        self.addCleanup(shutil.rmtree, dest, True)
        p = make("install", "DESTDIR=" + dest, "PREFIX=/usr", "MANDIR=/usr/man",
                 "SBINDIR=/usr/libexec")
        self.assertEqual(p.returncode, 0, p.stdout)
        got = files_under(dest)
        self.assertIn("usr/libexec/pop3d", got)
        self.assertIn("usr/man/man8/pop3d.8", got)
        self.assertIn("usr/share/examples/pop3d/systemd/pop3d@.service", got)
        self.assertEqual(len(got), len(INSTALLED))
        # the examples start the binary where it is
        with open(os.path.join(dest, "usr/share/examples/pop3d/systemd/pop3d@.service")) as f:
            self.assertIn("ExecStart=/usr/libexec/pop3d ", f.read())
        make("uninstall", "DESTDIR=" + dest, "PREFIX=/usr", "MANDIR=/usr/man",
             "SBINDIR=/usr/libexec")
        self.assertEqual(files_under(dest), [])


@functools.lru_cache(maxsize=None)
def syscall_group(name):
    """The system calls of a systemd syscall-filter group, its subgroups
    expanded."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], stdout=subprocess.PIPE,
                         universal_newlines=True, check=True, timeout=60).stdout
    calls = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        calls |= syscall_group(word) if word.startswith("@") else {word}
    return frozenset(calls)


def syscall_filter(unit_text):
    """The system calls a unit's SystemCallFilter= allows."""
    calls = set()
    for value in unit_settings(unit_text)["SystemCallFilter"]:
        for word in value.split():
            calls |= syscall_group(word) if word.startswith("@") else {word}
    return calls


class Manual(pt.Pop3TestCase):

    def test_mandoc_lint(self):
        p = subprocess.run(["mandoc", "-Tlint", "-W", "warning", os.path.join(TOP, "pop3d.8")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual((p.returncode, p.stdout), (0, b""))


class Units(pt.Pop3TestCase):
    """The systemd units: what a test machine can check without running
    their sandbox."""

    def test_unit_paths(self):
        # every path pop3d writes is writable under ProtectSystem=strict,
        # and no path that may be missing can fail a start
        for name in SERVICES:
            with self.subTest(unit=name):
                text = shipped("systemd/" + name)
                u = unit_settings(text)
                self.assertEqual(u["ProtectSystem"], ["strict"])
                self.assertEqual(u["RuntimeDirectory"], ["pop3d"])         # /run/pop3d
                self.assertEqual(u["RuntimeDirectoryPreserve"], ["yes"])
                self.assertEqual(u["CacheDirectory"], ["pop3d"])           # /var/cache/pop3d
                rw = " ".join(u["ReadWritePaths"]).split()
                self.assertIn("/var/mail", rw)                             # -m /var/mail/%u
                for path in rw:
                    self.assertTrue(path.startswith("-") or os.path.isdir(path), path)
                # the home-directory variant: optional paths, homes visible
                alt = unit_settings(re.sub(r"(?m)^#(ProtectHome|ReadWritePaths)=", r"\1=", text))
                self.assertIn("no", alt["ProtectHome"])
                self.assertIn("-/home", " ".join(alt["ReadWritePaths"]).split())
                self.assertEqual(u["ProtectHome"], ["yes"])
                self.assertEqual(u["NoNewPrivileges"], ["yes"])
                self.assertEqual(u["PrivateTmp"], ["yes"])
                self.assertEqual(u["SystemCallArchitectures"], ["native"])
                self.assertEqual(u["MemoryDenyWriteExecute"], ["yes"])
                self.assertEqual(u["LockPersonality"], ["yes"])
                self.assertEqual(u["RestrictAddressFamilies"], ["AF_UNIX"])
                caps = set(u["CapabilityBoundingSet"][0].split())
                self.assertLessEqual(caps, {"CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT",
                                            "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER",
                                            "CAP_KILL"})
                self.assertLessEqual({"CAP_SETUID", "CAP_SETGID", "CAP_SYS_CHROOT"}, caps)
                args = shlex.split(u["ExecStart"][0])
                self.assertEqual(args[0], BIN)
                self.assertEqual("-S" in args, name.startswith("pop3s"))
        for name, port in (("pop3d.socket", "110"), ("pop3s.socket", "995")):
            u = unit_settings(shipped("systemd/" + name))
            self.assertEqual(u["ListenStream"], [port])
            self.assertEqual(u["Accept"], ["yes"])
            self.assertTrue(int(u["MaxConnectionsPerSource"][0]) < int(u["MaxConnections"][0]))

    def local_units(self):
        d = self.env.new_dir("units", 0o755)
        for name in UNITS:
            with open(os.path.join(d, name), "w") as f:
                f.write(shipped("systemd/" + name).replace(BIN, pt.POP3D))
        return d

    def test_systemd_analyze_verify(self):
        d = self.local_units()
        p = subprocess.run(["systemd-analyze", "verify", "--man=no"]
                           + [os.path.join(d, n) for n in UNITS],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        self.assertEqual((p.returncode, p.stdout), (0, b""))

    def test_systemd_analyze_security_score(self):
        # the README says the score; it must be what systemd says
        with open(os.path.join(TOP, "README.md")) as f:
            readme = f.read()
        m = re.search(r"systemd-analyze security.*?scores? (?:it )?(\d+\.\d)", readme, re.S)
        self.assertTrue(m, "no systemd-analyze security score in the README")
        d = self.local_units()
        for name in SERVICES:
            p = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                                os.path.join(d, name)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
            score = re.search(rb"Overall exposure level for \S+: (\d+\.\d)", p.stdout)
            self.assertTrue(score, p.stdout)
            self.assertEqual(score.group(1).decode(), m.group(1), name)


# ----------------------------------------------------------------------
# Under the super-servers
# ----------------------------------------------------------------------

class SuperServers(TlsCase):

    def setUp(self):
        super().setUp()
        self.root = self.env.new_dir("system", 0o755)
        self.mail = os.path.join(self.root, "mail")
        os.mkdir(self.mail)
        os.chown(self.mail, 0, 8)               # root:mail 2775, as on Debian
        os.chmod(self.mail, 0o2775)
        self.data = pt.plain_mbox(2)
        self.msgs = pt.parse_mbox(self.data)
        box = os.path.join(self.mail, SVC_USER)
        with open(box, "wb") as f:
            f.write(self.data)
        os.chown(box, SVC_UID, 8)
        os.chmod(box, 0o660)
        h = pt.sha512_hash(SVC_PW)
        for name, line in (("passwd", "%s:x:%d:%d:pop3d test:/nonexistent:/usr/sbin/nologin"
                            % (SVC_USER, SVC_UID, SVC_UID)),
                           ("shadow", "%s:%s:20000:0:99999:7:::" % (SVC_USER, h)),
                           ("group", "%s:x:%d:" % (SVC_USER, SVC_UID))):
            with open("/etc/" + name) as f:
                text = f.read()
            path = os.path.join(self.root, name)
            with open(path, "w") as f:
                f.write(text + line + "\n")
            os.chmod(path, 0o640 if name == "shadow" else 0o644)
        self.ports = (pt.free_port(), pt.free_port())
        while self.ports[1] == self.ports[0]:
            self.ports = (self.ports[0], pt.free_port())

    def localize(self, text):
        """The shipped text with this machine's paths."""
        return text.replace(BIN, pt.POP3D).replace(CERT, self.tls.cert).replace(KEY, self.tls.key)

    def start(self, argv, ports):
        """Runs argv in a mount namespace with the test's accounts and
        spool; waits until it listens on each port."""
        script = ('set -e; for f in passwd shadow group; do '
                  'mount --bind "$0/$f" "/etc/$f"; done; '
                  'mount --bind "$0/mail" /var/mail; '
                  'mkdir -p /run/pop3d; mount -t tmpfs -o mode=0755 tmpfs /run/pop3d; '
                  'exec "$@"')
        log = open(os.path.join(self.root, "server.log"), "wb")
        self.addCleanup(log.close)
        proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                 script, self.root] + argv, stdin=subprocess.DEVNULL,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.helpers.append(proc)
        self.addCleanup(self.stop, proc)
        deadline = time.monotonic() + 15
        for port in ports:
            # a dual-stack listener is in /proc/net/tcp6
            while not (pt.listening(port) or pt.listening(port, True)):
                self.assertIsNone(proc.poll(), self.server_log())
                self.assertLess(time.monotonic(), deadline, self.server_log())
                time.sleep(0.02)
        return proc

    def stop(self, proc):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def server_log(self):
        with open(os.path.join(self.root, "server.log"), "rb") as f:
            return f.read().decode("utf-8", "replace")

    def curl(self, url, *args):
        p = subprocess.run(["curl", "-sS", "--max-time", "60", "--cacert", self.tls.cert]
                           + list(args) + [url], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=90)
        self.assertEqual(p.returncode, 0, p.stderr.decode() + self.server_log())
        return p.stdout

    def fetch_both(self, stls_port, tls_port):
        """Message 1 over STLS on one port, message 2 over implicit TLS on
        the other, then the list."""
        auth = "%s:%s@127.0.0.1" % (SVC_USER, SVC_PW)
        self.assertEqual(self.curl("pop3://%s:%d/1" % (auth, stls_port), "--ssl-reqd"),
                         self.msgs[0].crlf)
        self.assertEqual(self.curl("pop3s://%s:%d/2" % (auth, tls_port)), self.msgs[1].crlf)
        listing = self.curl("pop3s://%s:%d/" % (auth, tls_port))
        self.assertEqual(listing, b"".join(b"%d %d\r\n" % (i + 1, m.size)
                                           for i, m in enumerate(self.msgs)))

    def test_openbsd_inetd(self):
        # each pop3 line on 127.0.0.1:PORT, each pop3s line on the
        # other port; the tcp6 lines on ::1
        conf = []
        for line in self.localize(shipped("inetd.conf")).splitlines():
            if line.startswith("#") or not line.strip():
                conf.append(line)
                continue
            service, rest = line.split("\t", 1)
            port = self.ports[0] if service == "pop3" else self.ports[1]
            host = "::1" if "\ttcp6\t" in line else "127.0.0.1"
            conf.append("%s:%d\t%s" % (host, port, rest))
        path = os.path.join(self.root, "inetd.conf")
        with open(path, "w") as f:
            f.write("\n".join(conf) + "\n")
        self.start(["inetd", "-d", path], self.ports)
        self.fetch_both(*self.ports)
        # and IPv6, from the tcp6 lines
        auth = "%s:%s@[::1]" % (SVC_USER, SVC_PW)
        self.assertEqual(self.curl("pop3s://%s:%d/1" % (auth, self.ports[1]), "-k"),
                         self.msgs[0].crlf)

    def test_xinetd(self):
        text = self.localize(shipped("xinetd.pop3d"))
        # each service on its port of 127.0.0.1 (as a dual-stack
        # listener, which "flags = IPv6" makes)
        for name, port in (("pop3", self.ports[0]), ("pop3s", self.ports[1])):
            text = re.sub(r"(service %s\n\{\n)" % name,
                          r"\g<1>\ttype\t\t= UNLISTED\n\tport\t\t= %d\n"
                          r"\tbind\t\t= ::ffff:127.0.0.1\n" % port, text)
        conf = os.path.join(self.root, "xinetd.conf")
        log = os.path.join(self.root, "xinetd.log")
        with open(conf, "w") as f:
            f.write("defaults\n{\n\tlog_type = FILE %s\n}\n\n%s" % (log, text))
        pidfile = os.path.join(self.root, "xinetd.pid")
        self.start([XINETD, "-dontfork", "-f", conf, "-pidfile", pidfile], self.ports)
        self.fetch_both(*self.ports)

    def test_systemd_socket_activate_exec_start(self):
        # systemd cannot run as PID 1 here: the units' ExecStart lines
        # under systemd-socket-activate, as Accept=yes runs them
        argv = []
        for name, port in (("pop3d@.service", self.ports[0]),
                           ("pop3s@.service", self.ports[1])):
            u = unit_settings(self.localize(shipped("systemd/" + name)))
            self.assertEqual((u["StandardInput"], u["StandardOutput"]), (["socket"], ["socket"]))
            argv.append(["systemd-socket-activate", "--accept", "--inetd",
                         "-l", "127.0.0.1:%d" % port] + shlex.split(u["ExecStart"][0]))
        self.start(argv[0], self.ports[:1])
        self.start(argv[1], self.ports[1:])
        self.fetch_both(*self.ports)

    def test_system_call_filter_covers_pop3d(self):
        # the units' SystemCallFilter= kills pop3d at the first call it
        # lacks, and the test machine cannot run it: every call pop3d
        # makes in these sessions (logins good and bad, STLS, implicit
        # TLS, RETR, LIST, a commit) must be in it
        trace = os.path.join(self.root, "trace")
        for name, port in (("pop3d@.service", self.ports[0]),
                           ("pop3s@.service", self.ports[1])):
            u = unit_settings(self.localize(shipped("systemd/" + name)))
            self.start(["systemd-socket-activate", "--accept", "--inetd",
                        "-l", "127.0.0.1:%d" % port, "strace", "-f", "-q", "-ff", "-o",
                        trace] + shlex.split(u["ExecStart"][0]), [port])
        self.fetch_both(*self.ports)
        p = subprocess.run(["curl", "-sS", "--cacert", self.tls.cert,
                            "pop3s://%s:wrong@127.0.0.1:%d/" % (SVC_USER, self.ports[1])],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
        self.assertNotEqual(p.returncode, 0)
        self.curl("pop3s://%s:%s@127.0.0.1:%d/1" % (SVC_USER, SVC_PW, self.ports[1]),
                  "-X", "DELE", "-I")
        with open(os.path.join(self.mail, SVC_USER), "rb") as f:
            self.assertEqual(f.read(), self.data[self.msgs[1].start:], "DELE 1 not committed")
        deadline = time.monotonic() + 15
        used = set()
        while True:
            used, running = set(), 0
            for path in glob.glob(trace + ".*"):
                with open(path, errors="replace") as f:
                    text = f.read()
                used |= set(re.findall(r"(?m)^([a-z_0-9]+)\(", text))
                # strace ends each process's file when it is gone
                running += not re.search(r"(?m)^\+\+\+ (exited|killed)", text)
            if not running:
                break
            self.assertLess(time.monotonic(), deadline, "sessions still running")
            time.sleep(0.1)
        self.assertIn("chroot", used)
        self.assertIn("setresuid", used)
        for name in SERVICES:
            missing = used - syscall_filter(shipped("systemd/" + name))
            self.assertEqual(missing, set(), "%s lacks system calls pop3d makes" % name)
