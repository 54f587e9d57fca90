"""pop3test: the harness of the pop3d end-to-end tests.

It builds a throw-away test environment (users in a -a passwd file, spool
directories, home directories), starts pop3d through
systemd-socket-activate on a free port, talks POP3 over a plain socket, and
holds an independent Python reference of the mbox rules of the contract
(which bytes a message is, LF -> CRLF, dot-stuffing, LIST sizes, TOP).

Standard library only.  Must run as root.
"""

import atexit
import grp
import hashlib
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import struct
import subprocess
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
TOP_DIR = os.path.dirname(HERE)
POP3D = os.environ.get("POP3D", os.path.join(TOP_DIR, "pop3d"))
# The test build: the same code plus the hooks of testhooks.c and commit.c.
CRASHTEST = os.environ.get("POP3D_CRASHTEST", os.path.join(TOP_DIR, "pop3d-crashtest"))

SESSION_USER = "_pop3d"
SESSION_HOME = "/var/empty"

# How long a reply may take before a test fails (the failure delay is 2 s).
IO_TIMEOUT = 15.0

GREETING = b"+OK pop3d ready"

# mbox.c judges a header field name on the first MBOX_HEAD octets of its line.
MBOX_HEAD = 32
# Where the test directories go: a directory only root can change, on a
# path only root can change, as a real mail spool is.
TEST_BASE = "/var/lib/pop3d-tests"


def source_version():
    """POP3D_VERSION as pop3d.h defines it: the one place it is set."""
    with open(os.path.join(TOP_DIR, "pop3d.h")) as f:
        return re.search(r'#define POP3D_VERSION\s+"([^"]+)"', f.read()).group(1)


VERSION = source_version()


def messages(n):
    """"1 message", "2 messages": the count as pop3d's replies say it."""
    return "%d message%s" % (n, "" if n == 1 else "s")


# ----------------------------------------------------------------------
# Reference implementation of the mbox rules of the contract.
# ----------------------------------------------------------------------

class RefMsg:
    """One message of an mbox as the contract defines it."""

    def __init__(self, start, from_line, raw, end):
        self.start = start          # offset of the From_ line
        self.from_line = from_line  # the From_ line with its LF
        self.raw = raw              # served bytes, before the transform
        self.end = end              # offset of the next From_ line or EOF

    @property
    def crlf(self):
        """The message after LF -> CRLF, before dot-stuffing."""
        return to_crlf(self.raw)

    @property
    def size(self):
        return len(self.crlf)

    @property
    def wire(self):
        """What RETR sends after the +OK line, terminator included."""
        return dot_stuff(self.crlf) + b".\r\n"

    def top(self, k):
        """What TOP n k sends after the +OK line, terminator included."""
        lines = split_lines(self.raw)
        sel = lines
        for i, line in enumerate(lines):
            if line in (b"\n", b"\r\n"):
                sel = lines[:i + 1 + k]
                break
        return dot_stuff(to_crlf(b"".join(sel))) + b".\r\n"

    def top_unstuffed(self, k):
        return unstuff(self.top(k)[:-3])


def parse_mbox(data):
    """Splits mbox bytes into RefMsg objects (the contract's rules)."""
    starts = []
    if data.startswith(b"From "):
        starts.append(0)
    i = 0
    while True:
        j = data.find(b"\nFrom ", i)
        if j < 0:
            break
        starts.append(j + 1)
        i = j + 1
    msgs = []
    for n, s in enumerate(starts):
        e = starts[n + 1] if n + 1 < len(starts) else len(data)
        lf = data.find(b"\n", s, e)
        body_start = e if lf < 0 else lf + 1
        raw = data[body_start:e]
        if raw.endswith(b"\n"):
            p = raw.rfind(b"\n", 0, len(raw) - 1)
            if raw[p + 1:] in (b"\n", b"\r\n"):
                raw = raw[:p + 1]
        msgs.append(RefMsg(s, data[s:body_start], raw, e))
    return msgs


# Header fields mail readers rewrite in place: not part of the UIDL.
REWRITTEN_FIELDS = {b"status", b"x-status", b"x-keywords", b"x-uid", b"x-imap",
                    b"x-imapbase", b"content-length", b"lines",
                    b"x-mozilla-status", b"x-mozilla-status2"}


def uidl_line(line):
    """A line as the UIDL hashes it: its LF, and one CR before it, as LF."""
    if line.endswith(b"\n"):
        line = line[:-1]
    if line.endswith(b"\r"):
        line = line[:-1]
    return line + b"\n"


def ref_uidls(msgs):
    """The UIDL of each RefMsg: SHA-256 over the From_ line, the header
    fields not in REWRITTEN_FIELDS (each line's LF or CRLF hashed as LF)
    and the body's size as RETR sends it (8 octets, big-endian), 32 hex
    digits; messages equal in all three get .2, .3, ... in file order."""
    out = []
    seen = {}
    for m in msgs:
        h = hashlib.sha256(uidl_line(m.from_line))
        lines = split_lines(m.raw)
        body = b""
        skip = False
        for i, line in enumerate(lines):
            if line in (b"\n", b"\r\n"):
                body = b"".join(lines[i + 1:])
                break
            if line[:1] in (b" ", b"\t"):
                if skip:
                    continue
            else:
                name = re.match(rb"([\x21-\x39\x3b-\x7e]*)[ \t]*:", line[:MBOX_HEAD])
                skip = bool(name) and name.group(1).lower() in REWRITTEN_FIELDS
                if skip:
                    continue
            h.update(uidl_line(line))
        h.update(struct.pack(">Q", len(to_crlf(body))))
        u = h.hexdigest()[:32]
        seen[u] = seen.get(u, 0) + 1
        out.append(u if seen[u] == 1 else "%s.%d" % (u, seen[u]))
    return out


def split_lines(data):
    """Lines of data, each with its LF (the last one may lack it); only LF
    ends a line."""
    return re.findall(rb"[^\n]*\n|[^\n]+$", data)


def strip_received(data):
    """Removes the Received: header (with its continuation lines) a client
    puts in front of the message."""
    lines = split_lines(data)
    if lines and lines[0].startswith(b"Received:"):
        i = 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            i += 1
        lines = lines[i:]
    return b"".join(lines)


def to_crlf(raw):
    out = re.sub(rb"(?<!\r)\n", b"\r\n", raw)
    if out and not out.endswith(b"\n"):
        out += b"\r\n"
    return out


def dot_stuff(crlf):
    lines = crlf.split(b"\n")
    return b"\n".join(b"." + l if l.startswith(b".") else l for l in lines)


def unstuff(wire):
    lines = wire.split(b"\n")
    return b"\n".join(l[1:] if l.startswith(b"..") else l for l in lines)


def mbox_bytes(msgs):
    """Builds an mbox from (from_line, message) pairs, LF separators."""
    out = b""
    for from_line, body in msgs:
        out += from_line + body
        if not body.endswith(b"\n"):
            out += b"\n"
        out += b"\n"
    return out


# ----------------------------------------------------------------------
# Test corpus: messages that exercise every rule of the format.
# ----------------------------------------------------------------------

def msg(n, subject, body, extra_headers=b"", sender=b"sender@example.org"):
    return (b"Message-ID: <%d.%s@example.org>\n" % (n, subject.replace(b" ", b"-"))
            + b"From: " + sender + b"\n"
            + b"To: alice@example.org\n"
            + b"Subject: " + subject + b"\n"
            + b"Date: Mon, 1 Jan 2024 10:%02d:00 +0000\n" % n
            + extra_headers
            + b"\n" + body)


def from_line(n, who=b"sender@example.org"):
    return b"From " + who + b" Mon Jan  1 10:%02d:00 2024\n" % n


# A mailbox of plain messages without anything tricky (for real clients,
# which normalise line ends differently).
def plain_mbox(count=4):
    parts = []
    for n in range(1, count + 1):
        body = b"".join(b"line %d of message %d\n" % (i, n) for i in range(1, 6 + n))
        parts.append((from_line(n), msg(n, b"plain %d" % n, body,
                                        extra_headers=b"Status: O\n")))
    return mbox_bytes(parts)


# A mailbox with dot lines, >From lines, CRLF line ends, a lone CR, a
# message with no body, Status/X-Status headers, duplicates and a last
# message without a final LF.
def tricky_mbox():
    m1 = msg(1, b"dots", b".leading dot\n..two dots\n.\nmiddle\n. \n.\r\nend\n")
    m2 = msg(2, b"from quoting", b">From the start\nFrom\n>>From deep\nFromage\n")
    m3 = (b"Message-ID: <3.crlf@example.org>\r\nSubject: crlf\r\n\r\n"
          b"line one\r\nline two\r\n.dot after crlf\r\n")
    m4 = msg(4, b"lone cr", b"a\rb\ncarriage\r return\nlast\n")
    m5 = msg(5, b"status", b"status body\n", extra_headers=b"Status: O\nX-Status: \n")
    m6 = b"Message-ID: <6@example.org>\nSubject: no body\n"
    m7 = msg(7, b"dup", b"same\n")
    m8 = msg(7, b"dup", b"same\n")
    m9 = msg(9, b"blank lines", b"\n\nthree blank lines above\n\n\nand two here\n")
    data = mbox_bytes([(from_line(1), m1), (from_line(2), m2), (from_line(3), m3),
                       (from_line(4), m4), (from_line(5), m5), (from_line(6), m6),
                       (from_line(7), m7), (from_line(7), m8), (from_line(9), m9)])
    # a message without a separator before the next From_ line
    data += from_line(10) + msg(10, b"no separator", b"text\n")
    data += from_line(11) + msg(11, b"crlf separator", b"x\r\n") + b"\r\n"
    # the last message ends without a newline
    data += from_line(12) + msg(12, b"no final newline", b"first\nunterminated")
    return data


# ----------------------------------------------------------------------
# Environment: users, passwd file, directories.
# ----------------------------------------------------------------------

USERS = {
    # name: (password, uid, gid)
    "alice": ("alice-pw-3141", 61001, 61001),
    "bob": ("bob-pw-2718", 61002, 61002),
    "carol": ("carol-pw-1618", 61003, 61003),
    "dave": ("dave-pw-1414", 61004, 61004),
}

# Accounts that must never log in: (name, password, hash-or-None, uid).
# None means the hash of the password.
BAD_ACCOUNTS = [
    ("toor", "toor-pw-0000", None, 0),          # uid 0
    ("star", "star-pw", "*", 61010),             # locked "*"
    ("bang", "bang-pw", "!", 61011),             # locked "!"
    ("bangh", "bangh-pw", "!HASH", 61012),       # "!" before a valid hash
    ("empty", "", "", 61013),                    # empty hash
]


def run(argv, **kw):
    return subprocess.run(argv, check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **kw)


def sha512_hash(password):
    return run(["openssl", "passwd", "-6", "-stdin"],
               input=password.encode()).stdout.decode().strip()


class Env:
    """The environment shared by all tests of one run."""

    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = Env()
        return cls._instance

    def __init__(self):
        if os.geteuid() != 0:
            raise RuntimeError("the end-to-end tests must run as root")
        self.ensure_session_user()
        # not under /tmp: the monitor acts only in directories that
        # nobody but root can change, all the way from /
        os.makedirs(TEST_BASE, mode=0o755, exist_ok=True)
        os.chown(TEST_BASE, 0, 0)
        os.chmod(TEST_BASE, 0o755)
        self.root = tempfile.mkdtemp(prefix="pop3d-e2e-", dir=TEST_BASE)
        if os.environ.get("E2E_KEEP"):
            print("e2e: keeping the test directory %s" % self.root)
        else:
            atexit.register(shutil.rmtree, self.root, True)
        os.chmod(self.root, 0o755)
        self.homes = os.path.join(self.root, "home")
        os.mkdir(self.homes, 0o755)
        self.counter = 0
        lines = []
        self.hashes = {}
        for name, (pw, uid, gid) in USERS.items():
            home = self.home(name)
            os.mkdir(home, 0o700)
            os.chown(home, uid, gid)
            h = sha512_hash(pw)
            self.hashes[name] = h
            lines.append("%s:%s:%d:%d:%s:%s:/bin/sh" % (name, h, uid, gid, name.title(), home))
        for name, pw, h, uid in BAD_ACCOUNTS:
            if h is None:
                h = sha512_hash(pw)
            elif h == "!HASH":
                h = "!" + sha512_hash(pw)
            home = self.home(name)
            os.mkdir(home, 0o700)
            os.chown(home, uid, uid)
            lines.append("%s:%s:%d:%d::%s:/bin/sh" % (name, h, uid, uid, home))
        self.passwd = os.path.join(self.root, "passwd")
        with open(self.passwd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.passwd, 0o600)
        st = pwd.getpwnam(SESSION_USER)
        self.session_uid = st.pw_uid
        self.session_gid = st.pw_gid
        self.session_home = st.pw_dir

    @staticmethod
    def ensure_session_user():
        try:
            pwd.getpwnam(SESSION_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--home-dir", SESSION_HOME,
                            "--shell", "/usr/sbin/nologin", SESSION_USER],
                           check=True)
        home = pwd.getpwnam(SESSION_USER).pw_dir
        os.makedirs(home, exist_ok=True)
        os.chown(home, 0, 0)
        os.chmod(home, 0o755)

    def home(self, user):
        return os.path.join(self.homes, user)

    def new_dir(self, prefix, mode=0o755, uid=0, gid=0):
        self.counter += 1
        d = os.path.join(self.root, "%s-%d" % (prefix, self.counter))
        os.mkdir(d)
        os.chmod(d, mode)
        os.chown(d, uid, gid)
        return d


def password(user):
    return USERS[user][0]


def uid_of(user):
    return USERS[user][1]


def write_mailbox(path, data, user="alice", mode=0o600):
    """Writes a mailbox file owned by user, as a delivery agent would."""
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, USERS[user][1], USERS[user][2])
    os.chmod(path, mode)


def read_file(path):
    with open(path, "rb") as f:
        return f.read()


def file_state(path):
    """What must not change in a file pop3d must leave untouched."""
    st = os.lstat(path)
    content = None
    if stat.S_ISREG(st.st_mode):
        content = read_file(path)
    elif stat.S_ISLNK(st.st_mode):
        content = os.readlink(path)
    return (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns,
            st.st_ino, content)


# ----------------------------------------------------------------------
# Processes.
# ----------------------------------------------------------------------

def proc_stat(pid):
    """(state, ppid) of pid, or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            s = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rest = s[s.rindex(b")") + 2:].split()
    return rest[0].decode(), int(rest[1])


def all_pids():
    return [int(d) for d in os.listdir("/proc") if d.isdigit()]


def descendants(pid):
    """Live (non-zombie) descendants of pid."""
    children = {}
    for p in all_pids():
        st = proc_stat(p)
        if st is None or st[0] == "Z":
            continue
        children.setdefault(st[1], []).append(p)
    out = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def proc_status(pid):
    d = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            d[k] = v.strip()
    return d


def ipc_types():
    """enum ipc_type of pop3d.h as {name: number}."""
    with open(os.path.join(TOP_DIR, "pop3d.h")) as f:
        text = f.read()
    body = text[text.index("enum ipc_type {"):]
    body = body[:body.index("};")]
    names = re.findall(r"^\s*(IPC_[A-Z0-9_]+)", body, re.M)
    return {n: i for i, n in enumerate(names)}


def proc_cpu(pid):
    """User plus system CPU seconds of a live process."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_comm(pid):
    with open("/proc/%d/comm" % pid) as f:
        return f.read().rstrip("\n")


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.bind((host, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def listening(port, v6=False):
    path = "/proc/net/tcp6" if v6 else "/proc/net/tcp"
    want = ":%04X" % port
    with open(path) as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1].endswith(want) and fields[3] == "0A":
                return True
    return False


class Server:
    """One systemd-socket-activate listening for pop3d on a free port."""

    def __init__(self, args, logdir, host="127.0.0.1", binary=None, env=None):
        """binary replaces ./pop3d (the test build), env a dict of
        variables for it."""
        self.host = host
        v6 = ":" in host
        fam = socket.AF_INET6 if v6 else socket.AF_INET
        self.port = free_port(fam, host)
        self.args = [binary or POP3D, "-d"] + list(args)
        self.log_path = os.path.join(logdir, "pop3d-%d.log" % self.port)
        self.logf = open(self.log_path, "wb")
        listen = ("[%s]:%d" % (host, self.port)) if v6 else ("%s:%d" % (host, self.port))
        setenv = []
        for k, v in (env or {}).items():
            setenv += ["-E", "%s=%s" % (k, v)]
        # setpriv: the listener gets SIGTERM when the runner dies, even by
        # SIGKILL, so that an interrupted run leaves no listener behind
        self.proc = subprocess.Popen(
            ["setpriv", "--pdeathsig", "TERM",
             "systemd-socket-activate", "--accept", "--inetd", "-l", listen] + setenv
            + self.args,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.logf)
        deadline = time.monotonic() + 10
        while not listening(self.port, v6):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("systemd-socket-activate did not listen: " + self.log())
            time.sleep(0.02)

    def pids(self):
        """Live processes below systemd-socket-activate (pop3d's)."""
        return descendants(self.proc.pid)

    def wait_idle(self, timeout=10.0):
        """Waits until no pop3d process runs; returns True if so."""
        deadline = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        # let systemd-socket-activate log the child's exit
        time.sleep(0.05)
        return True

    def log(self):
        if not self.logf.closed:
            self.logf.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        """Stops the listener, then any pop3d left over (by PID); returns
        the PIDs that had to be killed."""
        leftover = self.pids()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in leftover:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 5
        while any(proc_stat(p) and proc_stat(p)[0] != "Z" for p in leftover):
            if time.monotonic() > deadline:
                break
            time.sleep(0.02)
        self.logf.close()
        return leftover


# ----------------------------------------------------------------------
# A raw POP3 client.
# ----------------------------------------------------------------------

class Closed(Exception):
    pass


class Client:
    def __init__(self, host, port, timeout=IO_TIMEOUT):
        fam = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(fam, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.buf = b""
        self.closed = False

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self):
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise Closed("connection closed by the server")
        self.buf += chunk

    def readline(self):
        """One reply line, without its CRLF (bytes)."""
        while b"\r\n" not in self.buf:
            self._fill()
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line

    def read_until_dot(self):
        """The body of a multi-line reply, up to and including .CRLF."""
        while True:
            if self.buf.startswith(b".\r\n"):
                end = 3
                break
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                end = i + 5
                break
            self._fill()
        data, self.buf = self.buf[:end], self.buf[end:]
        return data

    def lines_until_dot(self):
        body = self.read_until_dot()
        return [unstuff(l) for l in body[:-3].split(b"\r\n")[:-1]] if body != b".\r\n" else []

    def cmd(self, line):
        """Sends one command, returns the first reply line as str."""
        self.send(line + "\r\n" if isinstance(line, str) else line + b"\r\n")
        return self.readline().decode("latin-1")

    def multi(self, line):
        """Sends a command with a multi-line reply: (status, [lines])."""
        status = self.cmd(line)
        if not status.startswith("+OK"):
            return status, None
        return status, [l.decode("latin-1") for l in self.lines_until_dot()]

    def expect_closed(self, timeout=IO_TIMEOUT):
        """True if the server closes the connection (no more data)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return self.buf == b""
                self.buf += chunk
        except ConnectionResetError:
            return self.buf == b""
        except socket.timeout:
            return False

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.sock.close()
            except OSError:
                pass


# ----------------------------------------------------------------------
# The base class of the tests.
# ----------------------------------------------------------------------

class Pop3TestCase(unittest.TestCase):
    maxDiff = 4000

    def setUp(self):
        self.env = Env.get()
        self.spool = self.env.new_dir("spool")
        self.logdir = self.env.new_dir("log")
        self.servers = []
        self.clients = []
        self._srv = None

    def tearDown(self):
        for c in self.clients:
            c.close()
        problems = []
        for s in self.servers:
            idle = s.wait_idle(10)
            killed = s.stop()
            if os.environ.get("E2E_LOG"):
                print("\n--- log of %s:\n%s" % (self.id(), s.log()))
            if not idle:
                problems.append("pop3d processes still running 10 s after the "
                                "clients closed: %s" % killed)
        if problems:
            self.fail("; ".join(problems))

    # servers -----------------------------------------------------------

    def default_args(self, cleartext=True, timeout=30, maildrop=None):
        args = []
        if cleartext:
            args.append("-P")
        # no index unless a test asks for one (-i DIR after these): the
        # default /var/cache/pop3d is the host's, there or not
        args += ["-a", self.env.passwd, "-t", str(timeout),
                 "-m", maildrop or os.path.join(self.spool, "%u"), "-i", "none"]
        return args

    def server(self, args=None, host="127.0.0.1", binary=None, env=None, **kw):
        """Starts a server (default flags unless args is given)."""
        if args is None:
            args = self.default_args(**kw)
        s = Server(args, self.logdir, host, binary, env)
        self.servers.append(s)
        self._srv = s
        return s

    @property
    def srv(self):
        if self._srv is None:
            self.server()
        return self._srv

    def connect(self, srv=None, concurrent=False, greeting=True):
        """A client connected to srv (default: the test's server), after
        any earlier session of the test has ended (unless concurrent)."""
        srv = srv or self.srv
        if not concurrent:
            self.assertTrue(srv.wait_idle(10), "an earlier pop3d session did not end")
        c = Client(srv.host, srv.port)
        self.clients.append(c)
        if greeting:
            g = c.readline()
            self.assertTrue(g.startswith(GREETING), "greeting: %r" % g)
        return c

    def login(self, user="alice", srv=None, concurrent=False):
        c = self.connect(srv, concurrent)
        r = c.cmd("USER " + user)
        self.assertTrue(r.startswith("+OK"), "USER: " + r)
        r = c.cmd("PASS " + password(user))
        self.assertTrue(r.startswith("+OK maildrop has "), "PASS: " + r)
        c.login_reply = r
        return c

    def quit(self, c, expect="+OK pop3d signing off"):
        r = c.cmd("QUIT")
        self.assertTrue(r.startswith(expect), "QUIT: %r" % r)
        self.assertTrue(c.expect_closed(), "connection not closed after QUIT")
        c.close()
        self.assertTrue(self.srv.wait_idle(10), "pop3d did not exit after QUIT")
        return r

    def finish(self, c):
        """Drops the connection and waits for pop3d to exit."""
        c.close()
        self.assertTrue(self.srv.wait_idle(10), "pop3d did not exit after the client left")

    # mailboxes ----------------------------------------------------------

    def mbox_path(self, user="alice"):
        return os.path.join(self.spool, user)

    def put_mbox(self, data, user="alice"):
        path = self.mbox_path(user)
        write_mailbox(path, data, user)
        return parse_mbox(data)

    def assertReply(self, reply, expect):
        self.assertTrue(reply.startswith(expect), "reply %r, expected %r..." % (reply, expect))

    def assertLogin(self, reply, msgs):
        self.assertEqual(reply, "+OK maildrop has %s (%d octets)"
                         % (messages(len(msgs)), sum(m.size for m in msgs)))
