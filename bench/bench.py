#!/usr/bin/env python3
"""bench/bench.py: pop3d against popa3d and Dovecot, same machine, same run.

README
======

What it measures, for each server, on the same generated mailboxes:

  1. login -> STAT: the time from sending PASS to the STAT reply (password
     check, opening and scanning the mailbox), median of --runs sessions,
     on a 1-message mailbox (the fixed cost) and on 100,000 small messages
     (the scan cost);
  2. RETR of every message of a ~300 MB mailbox with a client that
     pipelines (a window of 64 outstanding RETRs), in MB/s (10^6 bytes of
     the wire, dot-stuffing and "+OK" lines included), median of runs;
  3. QUIT that deletes the first 10% of the messages of that mailbox: the
     time from sending QUIT to the server closing the connection, on a
     fresh copy each time; the result is checked (count and first
     Message-ID of what is left).  A second row adds the time of an
     fsync(2) of the mailbox by the benchmark right after: the time to a
     durable result, for servers that leave the writing to the kernel;
  4. QUIT that deletes only message 1 (the oldest) of a mailbox of 2,000
     small messages (~1 MB): what a client that keeps mail on the server
     for N days does every day;
  5. peak memory of cases 1 and 2: VmHWM from /proc/PID/status of every
     process of the session, sampled every few ms and again at the end of
     the work, summed over the processes (shared pages such as libc count
     once per process).  VmHWM hides memory that is freed before a larger
     use (a yescrypt hash takes ~16 MB for a moment), so case 1 also gives
     the VmRSS summed right after STAT, as the difference between the
     100,000-message and the 1-message mailbox: the index the session
     holds.

Extra rows: login -> STAT on the 300 MB mailbox, and QUIT after the RETRs
of case 2 (no deletions; Dovecot writes its Status headers then).

It prints a table of absolute numbers and the ratios pop3d / other.  Times:
a ratio below 1 means pop3d is faster; throughput: above 1 means pop3d is
faster; memory: below 1 means pop3d uses less.  Only ratios measured in
the same run mean anything: the machines are shared and noisy.  The
servers take turns run by run (pop3d, popa3d, dovecot, pop3d, ...) so a
noisy moment hits all of them.  Every mailbox is copied in and fsync'ed
before a session: each server starts from the same file, hot in the page
cache, with no dirty pages of the copy left to flush.  Its mtime is set an
hour back, as if the last delivery was an hour ago (popa3d sleeps a
second at login after a mailbox changed within the last second).

How to run (as root, on Debian 12, by hand -- never in CI):

    make pop3d && python3 bench/bench.py           # or: make bench
    python3 bench/bench.py --quick                 # small sizes, a smoke test
    python3 bench/bench.py --servers pop3d,dovecot --runs 3

One run takes about 3 minutes; generating the mailboxes the first time
adds a few seconds.  --cases 1,3 runs only some cases.

What it changes on the machine (run it only where that is acceptable):

  - installs packages: "apt-get install -y dovecot-core dovecot-pop3d" if
    /usr/sbin/dovecot is missing.  The packaged Dovecot service would
    listen on all interfaces: under systemd its units are masked
    (--runtime) during the install, then left disabled and stopped;
    elsewhere, a master the install started is killed by its PID and
    its init script disabled.  popa3d is not installed (it
    conflicts with dovecot-pop3d): "apt-get download popa3d" and
    "dpkg-deb -x" into /var/tmp/pop3bench/popa3d;
  - creates, if missing: the user pop3bench (mail user, shell nologin,
    no home), the users popa3d (popa3d's unprivileged user) and _pop3d
    (pop3d's), the root-owned directories /var/lib/popa3d and /var/empty,
    and /etc/pam.d/popa3d (the file of the popa3d package);
  - sets a random password on pop3bench for the run (chpasswd, so every
    server checks it through shadow/PAM) and locks it again at the end;
  - writes /var/mail/pop3bench (0600, owned by pop3bench), removed at the
    end, and keeps the generated mailboxes (~360 MB), logs, the Dovecot
    configuration and state under /var/tmp/pop3bench for the next run
    (--clean removes it all).

How each server runs, all on 127.0.0.1 only, on free ports:

  - pop3d: ./pop3d -P -d (system accounts) under
    systemd-socket-activate --accept --inetd;
  - popa3d: the Debian binary in inetd mode (no -D) under
    systemd-socket-activate --accept --inetd;
  - Dovecot: its own master (dovecot -F -c /var/tmp/pop3bench/dovecot/
    dovecot.conf, separate base_dir), listening on 127.0.0.1 only, with
    the real login path: pop3-login, auth (passdb PAM, userdb passwd),
    then the pop3 process; mbox:/var/mail/%u, ssl = no,
    disable_plaintext_auth = no.  Its index files are removed before each
    session ("cold": a mailbox it has never seen); case 1 also shows a
    "warm" login, a second session on the unchanged mailbox with the
    index in place.  Memory counts the session's pop3-login and pop3
    processes; the shared daemons are reported on their own.

Every process it starts is stopped at the end by its PID.  A server that
cannot be set up or fails a case is reported as such, and the others are
still measured.

Standard library only.
"""

import argparse
import base64
import json
import os
import pwd
import grp
import random
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
POP3D = os.path.join(TOP, "pop3d")

WORK = "/var/tmp/pop3bench"
MBOX_DIR = os.path.join(WORK, "mbox")
LOG_DIR = os.path.join(WORK, "logs")
POPA3D_DIR = os.path.join(WORK, "popa3d")
POPA3D_BIN = os.path.join(POPA3D_DIR, "root", "usr", "sbin", "popa3d")
DOVECOT_DIR = os.path.join(WORK, "dovecot")

USER = "pop3bench"
SPOOL = "/var/mail/" + USER
HOST = "127.0.0.1"
IO_TIMEOUT = 300.0
RETR_WINDOW = 64
SAMPLE_INTERVAL = 0.005

# mailbox generator version: bump when the generator changes, so that
# cached mailboxes are made again
GEN_VERSION = 1


def say(msg):
    print(msg, file=sys.stderr, flush=True)


def run(argv, **kw):
    return subprocess.run(argv, check=True, **kw)


# ----------------------------------------------------------------------
# /proc helpers
# ----------------------------------------------------------------------

def children(pid):
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def descendants(pid):
    seen = []
    todo = children(pid)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.append(p)
        todo.extend(children(p))
    return seen


def proc_comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return s[s.rindex(")") + 2]
    except (OSError, ValueError):
        return None


def vm_status_kb(pid, field):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def listening(port):
    want = ":%04X" % port
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1].endswith(want) and fields[3] == "0A":
                return True
    return False


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def proc_start(pid):
    """The start time of PID (field 22 of /proc/PID/stat), or None."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
        return int(s[s.rindex(")") + 2:].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def identify(pids):
    """(pid, start time) of each PID: kill_wait signals a PID only while
    it is still the same process."""
    return [(p, proc_start(p)) for p in pids]


def kill_wait(procs, timeout=5.0):
    """SIGTERM, then SIGKILL, each (pid, start) of the list that is still
    alive; waits for them."""
    def alive():
        return [p for p, start in procs
                if proc_start(p) == start and proc_state(p) not in (None, "Z")]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in alive():
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive():
                return
            time.sleep(0.02)


# ----------------------------------------------------------------------
# Mailboxes
# ----------------------------------------------------------------------

WORDS = (b"mail server message delivery local host queue spool inbox "
         b"header body line client fetch retrieve delete commit index "
         b"scan lock file user session protocol octet reply status the "
         b"a of and to in is that for it with as on be at by this").split()


def date_of(i):
    t = time.gmtime(1767225600 + i * 37)       # from 2026-01-01, 37 s apart
    return (time.strftime("%a %b %d %H:%M:%S %Y", t).encode(),
            time.strftime("%a, %d %b %Y %H:%M:%S +0000", t).encode())


def headers(rng, i, kind, subject):
    ctime, rfcdate = date_of(i)
    sender = b"sender%d@example.org" % rng.randrange(500)
    return (b"From " + sender + b" " + ctime + b"\n"
            b"Return-Path: <" + sender + b">\n"
            b"Received: from mx.example.org by bench.example with SMTP;\n"
            b"\t" + rfcdate + b"\n"
            b"From: Sender <" + sender + b">\n"
            b"To: pop3bench@bench.example\n"
            b"Subject: " + subject + b"\n"
            b"Date: " + rfcdate + b"\n"
            b"Message-ID: <" + kind + b"." + b"%d" % i + b"@bench.example>\n"
            b"\n")


def text_lines(rng, n):
    out = []
    for _ in range(n):
        out.append(b" ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 11))))
    return b"\n".join(out) + b"\n"


def gen_small(path, count, seed=1):
    """COUNT messages of a few hundred octets."""
    rng = random.Random(seed)
    tmp = path + ".tmp"
    with open(tmp, "wb", buffering=1 << 20) as f:
        for i in range(count):
            f.write(headers(rng, i, b"small",
                            b"small message %d" % i))
            f.write(text_lines(rng, rng.randint(2, 6)))
            f.write(b"\n")
    os.rename(tmp, path)


def gen_big(path, target, seed=2):
    """Messages of 1 KB to 1 MB (log-uniform, ~144 KB on average), mostly
    base64 lines as attachments are, with a few lines that need
    dot-stuffing and some ">From " lines, until TARGET octets."""
    rng = random.Random(seed)
    pool = []
    for k in range(16384):
        if k % 401 == 0:
            pool.append(b".a line that starts with a dot")
        elif k % 997 == 0:
            pool.append(b">From a quoted line, served as stored")
        else:
            pool.append(base64.b64encode(rng.randbytes(57)))
    blob = b"\n".join(pool + pool) + b"\n"
    starts = [0]
    for line in pool + pool:
        starts.append(starts[-1] + len(line) + 1)
    tmp = path + ".tmp"
    total = 0
    i = 0
    with open(tmp, "wb", buffering=1 << 20) as f:
        while total < target:
            size = int(10 ** rng.uniform(3, 6))
            h = headers(rng, i, b"big", b"big message %d, about %d octets"
                        % (i, size))
            h = h[:-1] + (b"MIME-Version: 1.0\n"
                          b"Content-Type: application/octet-stream\n"
                          b"Content-Transfer-Encoding: base64\n\n")
            nlines = max(1, (size - len(h)) // 77)
            a = rng.randrange(len(pool))
            body = blob[starts[a]:starts[a + nlines]]
            msg = h + body + b"\n"
            f.write(msg)
            total += len(msg)
            i += 1
    os.rename(tmp, path)


def mbox_count(path):
    with open(path, "rb") as f:
        data = f.read()
    n = data.count(b"\nFrom ") + (1 if data.startswith(b"From ") else 0)
    return n, len(data), data


def first_message_id(data):
    k = data.find(b"\nMessage-ID: <")
    if k < 0:
        k = data.find(b"\nMessage-Id: <")
    if k < 0:
        return None
    e = data.find(b">", k)
    return data[k + 14:e].decode("ascii", "replace")


class Mailbox:
    def __init__(self, name, path, count, size, kind):
        self.name = name
        self.path = path
        self.count = count
        self.size = size
        self.kind = kind        # Message-ID <KIND.N@bench.example>


def make_mailboxes(small_count, big_bytes, oldest_count):
    os.makedirs(MBOX_DIR, exist_ok=True)
    boxes = {}
    specs = [
        ("one", "one-v%d.mbox" % GEN_VERSION, lambda p: gen_small(p, 1, 3)),
        ("small", "small-%d-v%d.mbox" % (small_count, GEN_VERSION),
         lambda p: gen_small(p, small_count)),
        ("big", "big-%d-v%d.mbox" % (big_bytes, GEN_VERSION),
         lambda p: gen_big(p, big_bytes)),
        ("oldest", "small-%d-v%d.mbox" % (oldest_count, GEN_VERSION),
         lambda p: gen_small(p, oldest_count)),
    ]
    for name, fname, gen in specs:
        path = os.path.join(MBOX_DIR, fname)
        if not os.path.exists(path):
            say("generating %s" % path)
            t = time.monotonic()
            gen(path)
            say("  %.1f s" % (time.monotonic() - t))
        n, size, _ = mbox_count(path)
        boxes[name] = Mailbox(name, path, n, size,
                              "big" if name == "big" else "small")
    return boxes


def install_mailbox(src, uid, gid):
    """Copies SRC to the spool, 0600, owned by the user, fsync'ed."""
    for leftover in (SPOOL + ".lock", SPOOL + ".pop3d-journal"):
        if os.path.lexists(leftover):
            say("  note: removing leftover %s" % leftover)
            os.unlink(leftover)
    tmp = SPOOL + ".bench-tmp"
    with open(src, "rb") as fi, open(tmp, "wb") as fo:
        shutil.copyfileobj(fi, fo, 1 << 20)
        fo.flush()
        os.fchown(fo.fileno(), uid, gid)
        os.fchmod(fo.fileno(), 0o600)
        # as if the last delivery was an hour ago: popa3d sleeps a second
        # at login when the mailbox changed within the last second
        past = time.time() - 3600
        os.utime(fo.fileno(), (past, past))
        os.fsync(fo.fileno())
    os.rename(tmp, SPOOL)
    d = os.open(os.path.dirname(SPOOL), os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(d)
    finally:
        os.close(d)


# ----------------------------------------------------------------------
# System setup
# ----------------------------------------------------------------------

def ensure_user(name, home, system=True, group=None):
    try:
        pwd.getpwnam(name)
        return False
    except KeyError:
        pass
    argv = ["useradd", "--no-create-home", "--home-dir", home,
            "--shell", "/usr/sbin/nologin"]
    if system:
        argv.append("--system")
    if group:
        argv += ["--gid", group]
    else:
        argv.append("--user-group")
    run(argv + [name])
    say("created user %s" % name)
    return True


def ensure_root_dir(path):
    os.makedirs(path, exist_ok=True)
    os.chown(path, 0, 0)
    os.chmod(path, 0o755)


def setup_bench_user():
    ensure_user(USER, "/nonexistent", system=False)
    pw = secrets.token_urlsafe(18)
    run(["chpasswd"], input=("%s:%s\n" % (USER, pw)).encode())
    pwent = pwd.getpwnam(USER)
    return pw, pwent.pw_uid, pwent.pw_gid


def lock_bench_user():
    try:
        pwd.getpwnam(USER)
    except KeyError:
        return
    subprocess.run(["usermod", "-L", USER], stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def shadow_hash_kind():
    try:
        with open("/etc/shadow") as f:
            for line in f:
                fields = line.split(":")
                if fields[0] == USER:
                    h = fields[1]
                    return h[:h.index("$", 1) + 1] if h.startswith("$") else "?"
    except (OSError, ValueError):
        pass
    return "?"


def setup_pop3d():
    if not os.access(POP3D, os.X_OK):
        raise RuntimeError("%s is missing: run make first" % POP3D)
    ensure_root_dir("/var/empty")
    ensure_user("_pop3d", "/var/empty")
    r = subprocess.run([POP3D, "-n", "-P"], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("pop3d -n -P: " + (r.stderr or r.stdout).strip())


def setup_popa3d():
    if not os.access(POPA3D_BIN, os.X_OK):
        os.makedirs(POPA3D_DIR, exist_ok=True)
        for f in os.listdir(POPA3D_DIR):
            if f.endswith(".deb"):
                os.unlink(os.path.join(POPA3D_DIR, f))
        say("apt-get download popa3d")
        r = subprocess.run(["apt-get", "download", "popa3d"], cwd=POPA3D_DIR,
                           capture_output=True, text=True)
        debs = [f for f in os.listdir(POPA3D_DIR) if f.endswith(".deb")]
        if not debs:
            raise RuntimeError("apt-get download popa3d failed: "
                               + r.stderr.strip()[-300:])
        run(["dpkg-deb", "-x", os.path.join(POPA3D_DIR, debs[0]),
             os.path.join(POPA3D_DIR, "root")])
    # popa3d (Debian build) becomes user popa3d and chroots to
    # /var/lib/popa3d, which must be root's; PAM service "popa3d"
    try:
        grp.getgrnam("popa3d")
    except KeyError:
        run(["groupadd", "--system", "popa3d"])
    ensure_user("popa3d", "/var/lib/popa3d", group="popa3d")
    ensure_root_dir("/var/lib/popa3d")
    pam = "/etc/pam.d/popa3d"
    if not os.path.exists(pam):
        shutil.copyfile(os.path.join(POPA3D_DIR, "root", "etc", "pam.d",
                                     "popa3d"), pam)
        os.chmod(pam, 0o644)
        say("created %s (the popa3d package's file)" % pam)
    r = subprocess.run([POPA3D_BIN, "-V"], capture_output=True, text=True)
    return (r.stdout + r.stderr).strip()


def packaged_dovecot_pid():
    for pidfile in ("/run/dovecot/master.pid", "/var/run/dovecot/master.pid"):
        try:
            with open(pidfile) as f:
                pid = int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            continue
        if proc_state(pid) not in (None, "Z"):
            return pid
    return None


def systemctl(*args):
    subprocess.run(["systemctl"] + list(args), stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def setup_dovecot():
    if not os.access("/usr/sbin/dovecot", os.X_OK):
        # The package's service would listen on all interfaces (110, 995,
        # and the socket unit on 143, 993).  Under systemd a runtime mask
        # keeps the install from starting it; it ends up disabled.
        units = ["dovecot.service", "dovecot.socket"]
        systemd = os.path.isdir("/run/systemd/system")
        was_running = packaged_dovecot_pid()
        if systemd:
            systemctl("mask", "--runtime", *units)
        say("apt-get install -y dovecot-core dovecot-pop3d")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        try:
            r = subprocess.run(["apt-get", "install", "-y",
                                "--no-install-recommends",
                                "dovecot-core", "dovecot-pop3d"],
                               env=env, capture_output=True, text=True)
        finally:
            if systemd:
                systemctl("stop", *units)
                systemctl("disable", *units)
                systemctl("unmask", "--runtime", *units)
        if r.returncode != 0:
            raise RuntimeError("apt-get install dovecot failed: "
                               + r.stderr.strip()[-300:])
        pid = packaged_dovecot_pid()
        if pid and not was_running:
            kill_wait(identify([pid]))
            if not systemd:
                subprocess.run(["update-rc.d", "dovecot", "disable"],
                               capture_output=True)
            say("stopped the packaged Dovecot the install started (PID %d)"
                % pid)
    r = subprocess.run(["/usr/sbin/dovecot", "--version"],
                       capture_output=True, text=True)
    return r.stdout.strip()


# ----------------------------------------------------------------------
# Servers
# ----------------------------------------------------------------------

class Server:
    name = "?"
    how = ""

    def start(self):
        raise NotImplementedError

    def session_pids(self):
        raise NotImplementedError

    def stop(self):
        raise NotImplementedError

    def wait_idle(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while [p for p in self.session_pids() if proc_state(p) not in (None, "Z")]:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def reset_state(self):
        pass

    def wait_listening(self, proc, logname):
        deadline = time.monotonic() + 15
        while not listening(self.port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("%s did not listen on %s:%d; see %s"
                                   % (self.name, HOST, self.port, logname))
            time.sleep(0.02)


class SocketActivated(Server):
    def __init__(self, name, argv, how):
        self.name = name
        self.argv = argv
        self.how = how
        self.proc = None

    def start(self):
        self.port = free_port()
        self.log_path = os.path.join(LOG_DIR, "%s.log" % self.name)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["systemd-socket-activate", "--accept", "--inetd",
             "-l", "%s:%d" % (HOST, self.port)] + self.argv,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=self.logf)
        self.wait_listening(self.proc, self.log_path)

    def session_pids(self):
        return descendants(self.proc.pid) if self.proc else []

    def stop(self):
        if not self.proc:
            return
        left = identify(self.session_pids())
        kill_wait(identify([self.proc.pid]))
        self.proc.wait()
        kill_wait(left)
        self.proc = None
        self.logf.close()


class Dovecot(Server):
    name = "dovecot"
    how = ("own dovecot master on 127.0.0.1 with pop3-login + PAM auth "
           "(not preauthenticated)")
    SESSION_COMMS = ("pop3", "pop3-login")

    def __init__(self, uid, gid):
        self.uid = uid
        self.gid = gid
        self.proc = None
        self.conf = os.path.join(DOVECOT_DIR, "dovecot.conf")

    def user_dir(self, what):
        return os.path.join(DOVECOT_DIR, what, USER)

    def write_conf(self):
        for d in ("run", "state", "mail", "index", "home"):
            os.makedirs(os.path.join(DOVECOT_DIR, d), exist_ok=True)
        for d in ("mail", "index", "home"):
            p = self.user_dir(d)
            os.makedirs(p, exist_ok=True)
            os.chown(p, self.uid, self.gid)
            os.chmod(p, 0o700)
        conf = """\
# Written by pop3d's bench/bench.py.  Not the system's Dovecot: its own
# master, base_dir and state, POP3 only, on 127.0.0.1 only.
instance_name = pop3bench
base_dir = {d}/run
state_dir = {d}/state
protocols = pop3
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = {logs}/dovecot.log
mail_location = mbox:{d}/mail/%u:INBOX=/var/mail/%u:INDEX={d}/index/%u
mail_privileged_group = mail
passdb {{
  driver = pam
  args = dovecot
}}
userdb {{
  driver = passwd
  override_fields = home={d}/home/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
""".format(d=DOVECOT_DIR, logs=LOG_DIR, port=self.port)
        with open(self.conf, "w") as f:
            f.write(conf)
        r = subprocess.run(["doveconf", "-c", self.conf, "-n"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("doveconf: " + r.stderr.strip()[-400:])

    def start(self):
        if packaged_dovecot_pid() is not None:
            say("  note: a system Dovecot runs (PID %d); this one is separate"
                % packaged_dovecot_pid())
        self.port = free_port()
        self.write_conf()
        self.log_path = os.path.join(LOG_DIR, "dovecot.log")
        self.logf = open(os.path.join(LOG_DIR, "dovecot-master.log"), "ab")
        self.proc = subprocess.Popen(
            ["/usr/sbin/dovecot", "-F", "-c", self.conf],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf)
        self.wait_listening(self.proc, self.log_path)

    def session_pids(self):
        if not self.proc:
            return []
        return [p for p in descendants(self.proc.pid)
                if proc_comm(p) in self.SESSION_COMMS]

    def daemon_hwm_kb(self):
        """VmHWM of the long-lived processes: master and its helpers."""
        if not self.proc:
            return None, []
        pids = [self.proc.pid] + [p for p in descendants(self.proc.pid)
                                  if proc_comm(p) not in self.SESSION_COMMS]
        names = sorted(set(proc_comm(p) or "?" for p in pids))
        return sum(vm_status_kb(p, "VmHWM") or 0 for p in pids), names

    def reset_state(self):
        """Forget the index: the next session sees the mailbox cold."""
        p = self.user_dir("index")
        shutil.rmtree(p, ignore_errors=True)
        os.makedirs(p, exist_ok=True)
        os.chown(p, self.uid, self.gid)
        os.chmod(p, 0o700)

    def stop(self):
        if not self.proc:
            return
        left = identify(descendants(self.proc.pid))
        kill_wait(identify([self.proc.pid]), timeout=10)
        self.proc.wait()
        kill_wait(left)
        self.proc = None
        self.logf.close()


# ----------------------------------------------------------------------
# Client and memory sampler
# ----------------------------------------------------------------------

class ProtocolError(Exception):
    pass


class Client:
    def __init__(self, port):
        self.sock = socket.create_connection((HOST, port), timeout=IO_TIMEOUT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def readline(self):
        while True:
            k = self.buf.find(b"\n")
            if k >= 0:
                line = bytes(self.buf[:k + 1])
                del self.buf[:k + 1]
                return line
            data = self.sock.recv(65536)
            if not data:
                raise ProtocolError("connection closed by the server")
            self.buf += data

    def cmd(self, line, expect_ok=True):
        self.sock.sendall(line.encode() + b"\r\n")
        reply = self.readline()
        if expect_ok and not reply.startswith(b"+OK"):
            shown = "PASS ..." if line.startswith("PASS") else line
            raise ProtocolError("%s -> %s" % (shown, reply.decode("latin-1").strip()))
        return reply

    def greeting(self):
        g = self.readline()
        if not g.startswith(b"+OK"):
            raise ProtocolError("greeting: %r" % g)
        return g

    def login_stat(self, user, pw):
        """USER, then times PASS + STAT; returns (seconds, count, size)."""
        self.cmd("USER " + user)
        t0 = time.perf_counter()
        self.cmd("PASS " + pw)
        r = self.cmd("STAT")
        t1 = time.perf_counter()
        f = r.split()
        return t1 - t0, int(f[1]), int(f[2])

    def retr_all(self, n, window=RETR_WINDOW):
        """RETR 1..N, at most WINDOW outstanding; returns (seconds, wire
        octets, -ERR replies)."""
        sem = threading.Semaphore(window)
        failure = []

        def sender():
            try:
                for i in range(1, n + 1):
                    sem.acquire()
                    self.sock.sendall(b"RETR %d\r\n" % i)
            except OSError as e:
                failure.append(e)

        th = threading.Thread(target=sender, daemon=True)
        mem = bytearray(1 << 20)
        view = memoryview(mem)
        done = errs = total = 0
        tail = b""
        pending = bytes(self.buf)
        self.buf.clear()
        t0 = time.perf_counter()
        th.start()
        while done < n:
            if pending:
                chunk, pending = pending, b""
            else:
                k = self.sock.recv_into(view)
                if k == 0:
                    raise ProtocolError("connection closed after %d of %d RETR"
                                        % (done, n))
                chunk = bytes(view[:k])
            total += len(chunk)
            data = tail + chunk
            c = data.count(b"\r\n.\r\n")
            e = data.count(b"\n-ERR")
            tail = data[-4:]
            if c + e:
                done += c + e
                errs += e
                sem.release(c + e)
        t1 = time.perf_counter()
        th.join(5)
        if failure:
            raise ProtocolError("sending RETR: %s" % failure[0])
        return t1 - t0, total, errs

    def dele_first(self, n):
        self.sock.sendall(b"".join(b"DELE %d\r\n" % i for i in range(1, n + 1)))
        bad = 0
        for _ in range(n):
            if not self.readline().startswith(b"+OK"):
                bad += 1
        if bad:
            raise ProtocolError("%d DELE commands failed" % bad)

    def quit_timed(self):
        """Returns (seconds to the +OK, seconds to EOF, reply)."""
        t0 = time.perf_counter()
        self.sock.sendall(b"QUIT\r\n")
        reply = self.readline()
        t1 = time.perf_counter()
        while self.sock.recv(65536):
            pass
        t2 = time.perf_counter()
        return t1 - t0, t2 - t0, reply

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


class Sampler:
    """Polls VmHWM of the session's processes; keeps each PID's peak."""

    def __init__(self, server):
        self.server = server
        self.peak = {}
        self.comm = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def sample(self, rss=False):
        """Records each PID's VmHWM; with RSS, also returns the sum of
        VmRSS now (the memory the session holds at this point)."""
        total_rss = 0
        for p in self.server.session_pids():
            kb = vm_status_kb(p, "VmHWM")
            if kb is None:
                continue
            with self.lock:
                if kb > self.peak.get(p, 0):
                    self.peak[p] = kb
                    self.comm[p] = proc_comm(p)
            if rss:
                total_rss += vm_status_kb(p, "VmRSS") or 0
        return total_rss

    def loop(self):
        while not self.stopping.is_set():
            self.sample()
            time.sleep(SAMPLE_INTERVAL)

    def __enter__(self):
        self.sample()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join()

    def total_kb(self):
        with self.lock:
            return sum(self.peak.values())

    def detail(self):
        with self.lock:
            return ", ".join("%s %d KB" % (self.comm.get(p), kb)
                             for p, kb in sorted(self.peak.items()))


# ----------------------------------------------------------------------
# Cases
# ----------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.servers = []
        self.results = {}     # (server, metric) -> list of values
        self.errors = {}      # server -> list of messages
        self.notes = []
        self.details = {}     # (server, metric) -> text

    def record(self, srv, metric, value, detail=None):
        self.results.setdefault((srv.name, metric), []).append(value)
        if detail:
            self.details[(srv.name, metric)] = detail

    def fail(self, srv, what, err):
        msg = "%s: %s" % (what, err)
        say("  %s FAILED: %s" % (srv.name, msg))
        self.errors.setdefault(srv.name, []).append(msg)

    def session(self, srv):
        c = Client(srv.port)
        c.greeting()
        return c

    def finish(self, srv, c):
        c.close()
        if not srv.wait_idle():
            raise RuntimeError("session processes still running 30 s after "
                               "the session")

    def case_login(self, srv, box, metric, memory_metric=None, warm=False,
                   rss_metric=None):
        if not warm:
            install_mailbox(box.path, self.uid, self.gid)
            srv.reset_state()
        c = self.session(srv)
        with Sampler(srv) as smp:
            try:
                secs, n, size = c.login_stat(USER, self.pw)
                rss = smp.sample(rss=True)
                if n != box.count:
                    raise ProtocolError("STAT says %d messages, the mailbox has %d"
                                        % (n, box.count))
                c.quit_timed()
            finally:
                self.finish(srv, c)
        self.record(srv, metric, secs * 1000)
        if memory_metric:
            self.record(srv, memory_metric, smp.total_kb() / 1024, smp.detail())
        if rss_metric:
            self.record(srv, rss_metric, rss / 1024)
        return secs

    def case_retr(self, srv, box):
        install_mailbox(box.path, self.uid, self.gid)
        srv.reset_state()
        c = self.session(srv)
        with Sampler(srv) as smp:
            try:
                login, n, size = c.login_stat(USER, self.pw)
                if n != box.count:
                    raise ProtocolError("STAT says %d messages, the mailbox has %d"
                                        % (n, box.count))
                secs, wire, errs = c.retr_all(n)
                smp.sample()
                if errs:
                    raise ProtocolError("%d RETR commands got -ERR" % errs)
                q_ok, q_eof, _ = c.quit_timed()
            finally:
                self.finish(srv, c)
        self.record(srv, "big_login", login * 1000)
        self.record(srv, "retr", wire / secs / 1e6,
                    "%d messages, %d octets on the wire (STAT: %d) in %.2f s"
                    % (n, wire, size, secs))
        self.record(srv, "retr_mem", smp.total_kb() / 1024, smp.detail())
        self.record(srv, "retr_quit", q_eof)

    def case_commit(self, srv, box, ndel, metric):
        install_mailbox(box.path, self.uid, self.gid)
        srv.reset_state()
        c = self.session(srv)
        try:
            _, n, _ = c.login_stat(USER, self.pw)
            if n != box.count:
                raise ProtocolError("STAT says %d messages, the mailbox has %d"
                                    % (n, box.count))
            c.dele_first(ndel)
            q_ok, q_eof, reply = c.quit_timed()
        finally:
            self.finish(srv, c)
        if not reply.startswith(b"+OK"):
            raise ProtocolError("QUIT -> %s" % reply.decode("latin-1").strip())
        # what the server left in the page cache, written out: the time to
        # a durable result (a server that synced itself leaves ~nothing)
        t = time.perf_counter()
        fd = os.open(SPOOL, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        sync_secs = time.perf_counter() - t
        left, size, data = mbox_count(SPOOL)
        want_id = "%s.%d@bench.example" % (box.kind, ndel)
        got_id = first_message_id(data)
        if left != box.count - ndel or got_id != want_id:
            raise ProtocolError("after QUIT the mailbox has %d messages (want %d), "
                                "first %s (want %s)"
                                % (left, box.count - ndel, got_id, want_id))
        self.record(srv, metric + "_sync", q_eof + sync_secs)
        self.record(srv, metric, q_eof,
                    "%d of %d messages deleted, %d -> %d octets; +OK after %.3f s"
                    % (ndel, box.count, box.size, size, q_ok))

    def each(self, what, fn):
        """Runs FN(server) for every server still alive, in turn."""
        for srv in self.servers:
            if srv.name in self.dead:
                continue
            try:
                fn(srv)
            except Exception as e:  # report, keep measuring the others
                self.fail(srv, what, e)
                if not srv.wait_idle(10):
                    self.restart(srv)

    def restart(self, srv):
        say("  restarting %s" % srv.name)
        try:
            srv.stop()
            srv.start()
        except Exception as e:
            self.fail(srv, "restart", e)
            self.dead.add(srv.name)

    def main(self):
        a = self.args
        self.dead = set()
        os.makedirs(LOG_DIR, exist_ok=True)
        self.pw, self.uid, self.gid = setup_bench_user()
        self.versions = {}
        cands = [s.strip() for s in a.servers.split(",") if s.strip()]
        for name in cands:
            try:
                if name == "pop3d":
                    setup_pop3d()
                    srv = SocketActivated(
                        "pop3d", [POP3D, "-P", "-d"],
                        "./pop3d -P -d, system accounts, systemd-socket-activate")
                    self.versions["pop3d"] = subprocess.run(
                        ["git", "-C", TOP, "describe", "--always", "--dirty"],
                        capture_output=True, text=True).stdout.strip() or "?"
                elif name == "popa3d":
                    self.versions["popa3d"] = setup_popa3d()
                    srv = SocketActivated(
                        "popa3d", [POPA3D_BIN],
                        "Debian binary, inetd mode, systemd-socket-activate")
                elif name == "dovecot":
                    self.versions["dovecot"] = setup_dovecot()
                    srv = Dovecot(self.uid, self.gid)
                else:
                    raise RuntimeError("unknown server")
                srv.start()
                self.servers.append(srv)
                say("%s: listening on %s:%d (%s)" % (name, HOST, srv.port, srv.how))
            except Exception as e:
                say("%s: cannot be set up: %s" % (name, e))
                self.errors.setdefault(name, []).append("setup: %s" % e)
                self.dead.add(name)
        self.names = cands

        boxes = make_mailboxes(a.small, a.big_mb * 1000 * 1000, a.oldest)
        self.boxes = boxes
        for b in boxes.values():
            say("mailbox %s: %d messages, %d octets" % (b.name, b.count, b.size))

        t_start = time.monotonic()
        cases = set(a.cases.split(","))
        say("case 1a: login -> STAT, 1 message, %d runs" % a.runs)
        for r in range(a.runs if "1" in cases else 0):
            self.each("login 1 msg",
                      lambda s: self.case_login(s, boxes["one"], "one_login", "one_mem",
                                                rss_metric="one_rss"))
        say("case 1b: login -> STAT, %d messages, %d runs" % (boxes["small"].count, a.runs))
        for r in range(a.runs if "1" in cases else 0):
            def one(s):
                self.case_login(s, boxes["small"], "small_login", "small_mem",
                                rss_metric="small_rss")
                if isinstance(s, Dovecot):
                    self.case_login(s, boxes["small"], "small_login_warm", warm=True)
            self.each("login 100k", one)
        say("case 2: RETR all, %d MB, %d runs" % (boxes["big"].size // 10**6, a.big_runs))
        for r in range(a.big_runs if "2" in cases else 0):
            self.each("RETR all", lambda s: self.case_retr(s, boxes["big"]))
        say("case 3: QUIT deleting the first 10%%, %d runs" % a.commit_runs)
        for r in range(a.commit_runs if "3" in cases else 0):
            self.each("commit", lambda s: self.case_commit(
                s, boxes["big"], boxes["big"].count // 10, "commit"))
        say("case 4: QUIT deleting only message 1 of %d small messages, %d runs"
            % (boxes["oldest"].count, a.commit_runs))
        for r in range(a.commit_runs if "4" in cases else 0):
            self.each("commit oldest", lambda s: self.case_commit(
                s, boxes["oldest"], 1, "oldest"))
        self.elapsed = time.monotonic() - t_start
        for srv in self.servers:
            if isinstance(srv, Dovecot):
                kb, names = srv.daemon_hwm_kb()
                self.notes.append(
                    "dovecot's shared daemons (%s) add %.1f MB of VmHWM, "
                    "not counted in its per-session memory above"
                    % (", ".join(names), kb / 1024))
        self.report()

    # ------------------------------------------------------------------

    def report(self):
        a = self.args
        names = self.names
        others = [n for n in names if n != "pop3d"]
        rows = [
            ("one_login", "login->STAT, 1 message (ms)", "lower", "%.1f"),
            ("small_login", "login->STAT, %d msgs (ms)" % self.boxes["small"].count,
             "lower", "%.1f"),
            ("small_login_warm", "  same, dovecot index warm (ms)", "lower", "%.1f"),
            ("small_login-one_login", "  scan cost: difference (ms)", "lower", "%.1f"),
            ("one_mem", "peak mem, 1-msg STAT (MB)", "lower", "%.1f"),
            ("small_mem", "peak mem, %d-msg STAT (MB)" % self.boxes["small"].count,
             "lower", "%.1f"),
            ("small_rss-one_rss", "  RSS held at STAT, minus 1-msg (MB)",
             "lower", "%.1f"),
            ("big_login", "login->STAT, %d MB (ms)" % (self.boxes["big"].size // 10**6),
             "lower", "%.1f"),
            ("retr", "RETR all, %d MB (MB/s)" % (self.boxes["big"].size // 10**6),
             "higher", "%.0f"),
            ("retr_mem", "peak mem, RETR all (MB)", "lower", "%.1f"),
            ("retr_quit", "QUIT after RETR all, no DELE (s)", "lower", "%.3f"),
            ("commit", "QUIT deleting first 10%% (s)", "lower", "%.3f"),
            ("commit_sync", "  same, then fsync(mailbox) (s)", "lower", "%.3f"),
            ("oldest", "QUIT deleting msg 1 of %d (s)" % self.boxes["oldest"].count,
             "lower", "%.3f"),
            ("oldest_sync", "  same, then fsync(mailbox) (s)", "lower", "%.3f"),
        ]

        def med(name, key):
            if "-" in key:      # a derived row: difference of two medians
                x, y = (med(name, k) for k in key.split("-"))
                return x - y if x is not None and y is not None else None
            v = self.results.get((name, key))
            return statistics.median(v) if v else None

        head = ["%-36s" % "case (median)"] + ["%10s" % n for n in names]
        head += ["%14s" % ("pop3d/" + o) for o in others]
        out = []
        out.append("")
        out.append("pop3d benchmark: %s, %d CPUs, kernel %s, %s"
                   % (time.strftime("%Y-%m-%d %H:%M"), os.cpu_count(),
                      os.uname().release, "python " + sys.version.split()[0]))
        out.append("  ".join(head))
        out.append("-" * len("  ".join(head)))
        for key, label, better, fmt in rows:
            cells = ["%-36s" % (label.replace("%%", "%"))]
            pop = None
            if key == "small_login_warm":
                pop = med("pop3d", "small_login")
            else:
                pop = med("pop3d", key)
            if not any(med(n, key) is not None for n in names):
                continue
            for n in names:
                v = med(n, key)
                cells.append("%10s" % (fmt % v if v is not None else "n/a"))
            for o in others:
                v = med(o, key)
                cells.append("%14s" % ("%.2f" % (pop / v) if pop and v else "-"))
            out.append("  ".join(cells))
        out.append("")
        out.append("Ratios are pop3d / other: for times and memory below 1 means "
                   "pop3d is better, for MB/s above 1.")
        out.append("Runs: %d for the login cases, %d for RETR, %d for the "
                   "commits; servers take turns run by run."
                   % (a.runs, a.big_runs, a.commit_runs))
        out.append("The warm-index row compares pop3d (which keeps no index: "
                   "every login is cold) with Dovecot's second login.")
        out.append("")
        out.append("Mailboxes: " + "; ".join(
            "%s %d messages, %d octets" % (b.name, b.count, b.size)
            for b in self.boxes.values()))
        out.append("Password hash of %s: %s (all servers check the same)"
                   % (USER, shadow_hash_kind()))
        for srv in self.servers:
            out.append("%s %s: %s" % (srv.name, self.versions.get(srv.name, ""), srv.how))
        out.append("")
        out.append("All runs (min / median / max, n):")
        for key, label, better, fmt in rows:
            if "-" in key:
                continue
            for n in names:
                v = self.results.get((n, key))
                if not v:
                    continue
                out.append("  %-34s %-8s %s / %s / %s  (%d)%s" % (
                    label.replace("%%", "%"), n, fmt % min(v),
                    fmt % statistics.median(v), fmt % max(v), len(v),
                    ("\n      " + self.details[(n, key)])
                    if (n, key) in self.details else ""))
        for n in names:
            errs = self.errors.get(n, [])
            for e in sorted(set(errs), key=errs.index):
                k = errs.count(e)
                out.append("FAILED %s: %s%s" % (n, e, " (%d times)" % k if k > 1 else ""))
        for note in self.notes:
            out.append("Note: " + note)
        out.append("Measured in %.0f s.  Logs: %s" % (self.elapsed, LOG_DIR))
        text = "\n".join(out)
        print(text, flush=True)
        with open(os.path.join(WORK, "results.txt"), "w") as f:
            f.write(text + "\n")
        with open(os.path.join(WORK, "results.json"), "w") as f:
            json.dump({"%s %s" % k: v for k, v in self.results.items()}, f, indent=1)

    def cleanup(self):
        for srv in self.servers:
            try:
                srv.stop()
            except Exception as e:
                say("stopping %s: %s" % (srv.name, e))
        self.servers = []
        lock_bench_user()
        for p in (SPOOL, SPOOL + ".bench-tmp"):
            if os.path.lexists(p):
                os.unlink(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--servers", default="pop3d,popa3d,dovecot",
                    help="comma-separated, pop3d first (default: all three)")
    ap.add_argument("--runs", type=int, default=5,
                    help="sessions per server for the login cases (5)")
    ap.add_argument("--big-runs", type=int, default=3,
                    help="sessions per server for case 2 (3)")
    ap.add_argument("--commit-runs", type=int, default=5,
                    help="sessions per server for cases 3 and 4 (5)")
    ap.add_argument("--small", type=int, default=100000,
                    help="messages of the small-message mailbox (100000)")
    ap.add_argument("--big-mb", type=int, default=300,
                    help="size of the big mailbox in MB (300)")
    ap.add_argument("--cases", default="1,2,3,4",
                    help="which cases: 1 login->STAT, 2 RETR, 3 commit 10%%, "
                    "4 commit of the oldest message (1,2,3,4)")
    ap.add_argument("--oldest", type=int, default=2000,
                    help="messages of the mailbox of case 4 (2000)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke test: 5000 small messages, 20 MB, 200 for "
                    "case 4, 2 runs")
    ap.add_argument("--clean", action="store_true",
                    help="remove %s and exit" % WORK)
    a = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench.py: run as root (it creates users and runs the servers)")
    if a.clean:
        shutil.rmtree(WORK, ignore_errors=True)
        lock_bench_user()
        return
    if a.quick:
        a.small, a.big_mb, a.oldest = 5000, 20, 200
        a.runs = a.big_runs = a.commit_runs = 2
    os.makedirs(WORK, exist_ok=True)
    os.chmod(WORK, 0o755)
    b = Bench(a)

    def on_signal(sig, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        b.main()
    finally:
        b.cleanup()


if __name__ == "__main__":
    main()
