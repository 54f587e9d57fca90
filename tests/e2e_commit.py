#!/usr/bin/env python3
"""e2e_commit: crash safety of the QUIT commit, and the faults around it.

    python3 tests/e2e_commit.py            # everything (run as root, from /work/main)
    python3 tests/e2e_commit.py -v         # one line per test
    python3 tests/e2e_commit.py CrashWalk  # some classes or tests

What is tested, all with the real binaries:
  - CrashWalk: ./pop3d-crashtest with POP3D_CRASH_AT=1, 2, ... until a
    commit completes, for deletions of the first, a middle, the last, all
    and a mix of messages, in a root-owned spool directory and in the
    user's home; in a second variant a message is delivered during the
    session and another one after the crash.  After each crash a session
    of the normal ./pop3d recovers, and the mailbox must be exactly the
    committed or exactly the uncommitted state, with the deliveries.
  - RandomKill: a mailbox over 100 MB, procmail delivering all the time,
    kill -9 of the maildrop process at random instants of commits.
  - Faults: ENOSPC on a tmpfs, a read-only bind mount, a mail reader's
    rewrite during the session, the mailbox removed or replaced, held and
    stale dot-locks, the dot-lock a killed commit leaves behind.

Ends with "e2e_commit: N passed, N failed" on stdout; exits 1 on failure.
Environment: POP3D, POP3D_CRASHTEST override the binaries; E2E_LOG=1
prints server logs of failed tests; E2E_KEEP=1 keeps the temporary tree.
"""

import base64
import collections
import errno
import fcntl
import grp
import hashlib
import os
import random
import re
import select
import signal
import stat
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pop3test as pt  # noqa: E402

POP3D = pt.POP3D
CRASHTEST = os.environ.get("POP3D_CRASHTEST",
                           os.path.join(pt.TOP_DIR, "pop3d-crashtest"))

# Users of this file and e2e_crash (uids 62001+): the session lock in /run/pop3d is
# global, other test files use other names.
USERS = {"crash%d" % i: ("crash%d-pw-%d" % (i, 7919 * i), 62000 + i)
         for i in range(1, 84)}

SYS_TEMP_CHANGED = "-ERR [SYS/TEMP] maildrop changed by another program, nothing deleted"
SYS_TEMP_REPLACED = "-ERR [SYS/TEMP] maildrop removed or replaced, nothing deleted"
SYS_TEMP_NOSPACE = "-ERR [SYS/TEMP] cannot update maildrop, nothing deleted"
IN_USE_COMMIT = "-ERR [IN-USE] maildrop is locked, nothing deleted"
SYS_PERM_RDONLY = "-ERR [SYS/PERM] maildrop is read-only, nothing deleted"
JOURNAL = ".pop3d-journal"
STALE = 300            # liblockfile's stale dot-lock age (DOTLOCK_STALE)


# ----------------------------------------------------------------------
# Environment: our users in our own -a passwd file.
# ----------------------------------------------------------------------

class CommitEnv:
    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = CommitEnv()
        return cls._instance

    def __init__(self):
        self.env = pt.Env.get()          # temp root, the _pop3d user
        self.root = self.env.new_dir("commit")
        self.homes = os.path.join(self.root, "home")
        os.mkdir(self.homes, 0o755)
        lines = []
        for name, (pw, uid) in sorted(USERS.items()):
            home = self.home(name)
            os.mkdir(home, 0o700)
            os.chown(home, uid, uid)
            lines.append("%s:%s:%d:%d:%s:%s:/bin/sh"
                         % (name, pt.sha512_hash(pw), uid, uid, name, home))
        self.passwd = os.path.join(self.root, "passwd")
        with open(self.passwd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.passwd, 0o600)

    def home(self, user):
        return os.path.join(self.homes, user)

    def new_dir(self, prefix, mode=0o755, uid=0, gid=0):
        return self.env.new_dir(prefix, mode, uid, gid)


def uid_of(user):
    return USERS[user][1]


def pw_of(user):
    return USERS[user][0]


def read(path):
    with open(path, "rb") as f:
        return f.read()


def put_file(path, data, uid, mode=0o600):
    with open(path, "wb") as f:
        f.write(data)
    os.chown(path, uid, uid)
    os.chmod(path, mode)


def mda_deliver(path, data, stale=STALE):
    """Appends data as a Debian delivery agent does: fcntl lock, then an
    O_EXCL dot-lock (a stale one, older than `stale' s, is removed), append,
    fsync, unlock.  Runs as root; the file keeps its owner."""
    lock = path + ".lock"
    with open(path, "ab") as f:
        deadline = time.monotonic() + 30
        while True:
            try:
                fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        try:
            while True:
                try:
                    os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                    break
                except FileExistsError:
                    try:
                        if time.time() - os.stat(lock).st_mtime > stale:
                            os.unlink(lock)
                            continue
                    except FileNotFoundError:
                        continue
                    if time.monotonic() > deadline:
                        raise RuntimeError("dot-lock %s held for 30 s" % lock)
                    time.sleep(0.05)
            try:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            finally:
                os.unlink(lock)
        finally:
            fcntl.lockf(f, fcntl.LOCK_UN)


def locked_read(path):
    """Reads the mailbox between deliveries: dot-lock, then fcntl, the
    order procmail uses (no lock-order inversion with it)."""
    lock = path + ".lock"
    deadline = time.monotonic() + 60
    while True:
        try:
            os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise RuntimeError("dot-lock %s held for 60 s" % lock)
            time.sleep(0.01)
    try:
        with open(path, "rb") as f:
            fcntl.lockf(f, fcntl.LOCK_SH)
            try:
                return f.read()
            finally:
                fcntl.lockf(f, fcntl.LOCK_UN)
    finally:
        os.unlink(lock)


def message_id(raw):
    m = re.search(rb"^Message-ID: (<[^>\n]*>)", raw, re.M | re.I)
    return m.group(1).decode() if m else None


def describe(data):
    """Short description of an mbox for failure messages."""
    return "%d bytes: %s" % (len(data), [message_id(m.raw) for m in pt.parse_mbox(data)])


def kill_pid(pid, sig=signal.SIGKILL):
    try:
        os.kill(pid, sig)
        return True
    except ProcessLookupError:
        return False


# ----------------------------------------------------------------------
# pop3d on a pipe: one session on fd 0/1, the log (-d) in a file.
# ----------------------------------------------------------------------

class PipeSession:
    def __init__(self, binary, args, log_path, crash_at=None, extra_env=None):
        env = dict(os.environ)
        env.pop("POP3D_CRASH_AT", None)
        if crash_at is not None:
            env["POP3D_CRASH_AT"] = str(crash_at)
        env.update(extra_env or {})
        self.log_path = log_path
        self.logf = open(log_path, "wb")
        self.proc = subprocess.Popen([binary, "-d"] + args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.logf, env=env)
        self.buf = b""
        self.eof = False

    def send(self, text):
        try:
            self.proc.stdin.write(text.encode() if isinstance(text, str) else text)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply from pop3d")
        r, _, _ = select.select([self.proc.stdout], [], [], left)
        if not r:
            raise TimeoutError("no reply from pop3d")
        chunk = os.read(self.proc.stdout.fileno(), 65536)
        if not chunk:
            self.eof = True
        self.buf += chunk

    def readline(self, timeout=30):
        """A reply line (str, no CRLF), or None at end of file."""
        deadline = time.monotonic() + timeout
        while b"\r\n" not in self.buf:
            if self.eof:
                return None
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\r\n")
        return line.decode("latin-1")

    def finish(self, timeout=60):
        """Closes stdin, reads everything left; (rest of output, rc, log)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + timeout
        try:
            while not self.eof:
                self._fill(deadline)
            self.proc.wait(max(0.1, deadline - time.monotonic()))
        except (TimeoutError, subprocess.TimeoutExpired):
            self.kill()
            raise AssertionError("pop3d did not finish within %d s" % timeout)
        finally:
            self.proc.stdout.close()
            self.logf.close()
        return self.buf.decode("latin-1"), self.proc.returncode, self.log()

    def kill(self):
        for p in pt.descendants(self.proc.pid) + [self.proc.pid]:
            kill_pid(p)
        self.proc.wait()

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")


# ----------------------------------------------------------------------
# Base class.
# ----------------------------------------------------------------------

class CommitCase(unittest.TestCase):
    maxDiff = 3000
    USER = None
    crash_env = {}      # for the crash-test binary

    def setUp(self):
        self.cenv = CommitEnv.get()
        self.logdir = self.cenv.new_dir("log")
        self.servers = []
        self.clients = []
        self.pipes = []
        self.mounts = []
        self.nlog = 0

    def tearDown(self):
        for c in self.clients:
            c.close()
        for p in self.pipes:
            if p.proc.poll() is None:
                p.kill()
        problems = []
        for s in self.servers:
            if not s.wait_idle(15):
                problems.append("pop3d processes still running: %s" % s.pids())
            s.stop()
            if os.environ.get("E2E_LOG"):
                sys.stderr.write("\n--- log of %s:\n%s" % (self.id(), s.log()))
        for m in reversed(self.mounts):
            subprocess.run(["umount", m], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if os.path.ismount(m):
                subprocess.run(["umount", "-l", m])
        if problems:
            self.fail("; ".join(problems))

    # layouts ------------------------------------------------------------

    def layout(self, kind, user):
        """(template, mailbox path, directory): kind "root" = a root-owned
        0755 spool directory (the monitor makes the dot-lock and the
        journal), "home" = %h/mbox in the user's own directory."""
        if kind == "root":
            d = self.cenv.new_dir("spool")
            return os.path.join(d, "%u"), os.path.join(d, user), d
        home = self.cenv.home(user)
        for name in os.listdir(home):
            os.unlink(os.path.join(home, name))
        return "%h/mbox", os.path.join(home, "mbox"), home

    def args(self, template, timeout=60):
        return ["-P", "-a", self.cenv.passwd, "-t", str(timeout), "-m", template]

    # pipe sessions ------------------------------------------------------

    def pipe(self, template, binary=POP3D, crash_at=None):
        self.nlog += 1
        p = PipeSession(binary, self.args(template),
                        os.path.join(self.logdir, "pipe-%d.log" % self.nlog), crash_at,
                        self.crash_env if binary == CRASHTEST else None)
        self.pipes.append(p)
        return p

    def pipe_run(self, user, template, commands, binary=POP3D, crash_at=None):
        """A whole pipelined session: (reply lines, rc, log)."""
        p = self.pipe(template, binary, crash_at)
        p.send("USER %s\r\nPASS %s\r\n" % (user, pw_of(user))
               + "".join(c + "\r\n" for c in commands))
        out, rc, log = p.finish()
        return out.split("\r\n")[:-1], rc, log

    def clean_session(self, user, template):
        """A session of the normal pop3d: login, STAT, UIDL, QUIT.
        Returns (login reply, STAT reply, {n: uidl}, log)."""
        lines, rc, log = self.pipe_run(user, template, ["STAT", "UIDL", "QUIT"])
        self.assertGreaterEqual(len(lines), 4, "session output %r, log:\n%s" % (lines, log))
        self.assertEqual(lines[0], "+OK pop3d ready")
        login = lines[2]
        self.assertTrue(login.startswith("+OK maildrop has "),
                        "login after recovery: %r, log:\n%s" % (login, log))
        statr = lines[3]
        self.assertEqual(lines[4], "+OK unique-id listing follows")
        end = lines.index(".", 5)
        uidls = {}
        for l in lines[5:end]:
            n, u = l.split(" ")
            uidls[int(n)] = u
        self.assertTrue(lines[end + 1].startswith("+OK pop3d signing off"), lines[end + 1:])
        self.assertEqual(rc, 0, "normal session exit status, log:\n" + log)
        return login, statr, uidls, log

    # network servers ----------------------------------------------------

    def server(self, template, timeout=60):
        s = pt.Server(self.args(template, timeout), self.logdir)
        self.servers.append(s)
        return s

    def connect(self, srv, timeout=pt.IO_TIMEOUT):
        self.assertTrue(srv.wait_idle(15), "an earlier pop3d session did not end")
        c = pt.Client(srv.host, srv.port, timeout)
        self.clients.append(c)
        g = c.readline()
        self.assertTrue(g.startswith(pt.GREETING), "greeting %r" % g)
        return c

    def login(self, srv, user, timeout=pt.IO_TIMEOUT):
        c = self.connect(srv, timeout)
        self.assertEqual(c.cmd("USER " + user), "+OK send PASS")
        r = c.cmd("PASS " + pw_of(user))
        self.assertTrue(r.startswith("+OK maildrop has "), "PASS: %r, log:\n%s" % (r, srv.log()))
        c.login_reply = r
        return c

    def quit(self, srv, c, expect):
        r = c.cmd("QUIT")
        self.assertTrue(r.startswith(expect), "QUIT: %r, expected %r; log:\n%s"
                        % (r, expect, srv.log()))
        self.assertTrue(c.expect_closed(), "connection not closed after QUIT")
        c.close()
        self.assertTrue(srv.wait_idle(15), "pop3d did not exit after QUIT")
        return r

    def mount(self, argv, target):
        subprocess.run(argv, check=True)
        self.mounts.append(target)

    def assertLoginMatches(self, reply, data):
        msgs = pt.parse_mbox(data)
        self.assertEqual(reply, "+OK maildrop has %s (%d octets)"
                         % (pt.messages(len(msgs)), sum(m.size for m in msgs)))


# ----------------------------------------------------------------------
# Test mailboxes.
# ----------------------------------------------------------------------

def body_of(n, size):
    lines = []
    total = 0
    i = 0
    while total < size:
        i += 1
        if i == 3:
            l = b".a line with a leading dot in message %d\n" % n
        elif i == 5:
            l = b">From a quoted line of message %d\n" % n
        else:
            l = b"message %d line %d %s\n" % (n, i, hashlib.sha256(b"%d/%d" % (n, i)).hexdigest()[:20 + i % 30].encode())
        lines.append(l)
        total += len(l)
    return b"".join(lines)


# six messages of different sizes: several commit steps per move
WALK_SIZES = [600, 1500, 400, 3000, 800, 1200]


def walk_mbox():
    parts = []
    for n, size in enumerate(WALK_SIZES, 1):
        parts.append((pt.from_line(n), pt.msg(n, b"walk %d" % n, body_of(n, size),
                                              extra_headers=b"Status: O\n")))
    return pt.mbox_bytes(parts)


def new_message(tag, size=500):
    body = body_of(900, size)
    return (b"From mda@example.org Tue Jan  2 10:00:00 2024\n"
            + b"Message-ID: <%s@mda.example.org>\nSubject: delivered %s\n\n" % (tag, tag)
            + body + b"\n")


def kept_bytes(data, msgs, deleted):
    return b"".join(data[m.start:m.end] for i, m in enumerate(msgs) if i + 1 not in deleted)


# ----------------------------------------------------------------------
# Deterministic crash points.
# ----------------------------------------------------------------------

CRASH_RE = re.compile(r"crash point (\d+): ([a-z]+(?: (?!from=)[a-z]+)*)")


class CrashWalk(CommitCase):
    """Every crash point of a commit, in turn, then recovery by a normal
    session: nothing lost, nothing duplicated, all or nothing deleted."""

    journal_magic = b"pop3dJ4\n"

    def walk(self, kind, user, deleted, deliver):
        template, path, d = self.layout(kind, user)
        uid = uid_of(user)
        orig = walk_mbox()
        msgs = pt.parse_mbox(orig)
        put_file(path, orig, uid)
        # the UIDLs before any commit
        login, _, uidl0, _ = self.clean_session(user, template)
        self.assertLoginMatches(login, orig)
        uidl_of = {message_id(m.raw): uidl0[i + 1] for i, m in enumerate(msgs)}
        self.assertEqual(read(path), orig)
        lock = path + ".lock"
        journal = path + JOURNAL
        dele = ["DELE %d" % n for n in sorted(deleted)]
        left = len(msgs) - len(deleted)
        during = new_message(b"during") if deliver else b""
        after = new_message(b"after") if deliver else b""
        labels = []
        journals_seen = 0
        leftover_locks = 0
        n = 0
        while True:
            n += 1
            self.assertLess(n, 400, "the commit never completed")
            put_file(path, orig, uid)
            for f in (lock, journal):
                self.assertFalse(os.path.exists(f), "%s left over before run %d" % (f, n))
            if deliver:
                p = self.pipe(template, CRASHTEST, n)
                p.send("USER %s\r\nPASS %s\r\n%s\r\n" % (user, pw_of(user), "\r\n".join(dele)))
                replies = [p.readline() for _ in range(3 + len(dele))]
                self.assertEqual(replies[-1], "+OK message %d deleted" % max(deleted), replies)
                mda_deliver(path, during)     # becomes the commit's tail
                p.send("QUIT\r\n")
                out, rc, log = p.finish()
                out = out.split("\r\n")[:-1]
            else:
                out, rc, log = self.pipe_run(user, template, dele + ["QUIT"], CRASHTEST, n)
            m = CRASH_RE.search(log)
            committed = kept_bytes(orig, msgs, deleted) + during
            if m is None:
                # past the last crash point: the commit completes normally
                self.assertEqual(out[-1:], ["+OK pop3d signing off (%s left)" % pt.messages(left)],
                                 "run %d: no crash point, output %r, log:\n%s" % (n, out, log))
                self.assertEqual(rc, 0, log)
                self.assertTrue(read(path) == committed, "completed commit: %s, expected %s"
                                % (describe(read(path)), describe(committed)))
                self.assertFalse(os.path.exists(journal), "journal left after a complete commit")
                self.assertFalse(os.path.exists(lock), "dot-lock left after a complete commit")
                break
            self.assertEqual(int(m.group(1)), n, "crash point numbering, log:\n" + log)
            labels.append(m.group(2))
            self.assertRegex(log, r"maildrop process killed signal=\d+",
                             "run %d: the maildrop process did not die at the crash point" % n)
            self.assertNotIn("+OK pop3d signing off", "\n".join(out),
                             "run %d: QUIT succeeded although the commit was killed" % n)
            if os.path.exists(journal):
                journals_seen += 1
                with open(journal, "rb") as jf:
                    head = jf.read(8)
                if head:
                    self.assertEqual(head, self.journal_magic,
                                     "journal format at crash point %d" % n)
                st = os.lstat(journal)
                self.assertTrue(stat.S_ISREG(st.st_mode))
                self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)),
                                 (uid, uid, 0o600), "journal owner and mode at crash point %d" % n)
            self.assertEqual(os.stat(path).st_uid, uid, "mailbox owner changed")
            if os.path.exists(lock):
                # the killed maildrop's own dot-lock (see DotLockAfterCrash):
                # let time pass so that the stale-lock rule removes it
                leftover_locks += 1
                old = time.time() - 2 * STALE
                os.utime(lock, (old, old))
            if deliver:
                mda_deliver(path, after)
            before = read(path)
            login, statr, uidls, rlog = self.clean_session(user, template)
            now = read(path)
            complete = committed + after
            undone = orig + during + after
            self.assertTrue(now in (complete, undone),
                          "after crash point %d (%s) and recovery the mailbox is neither "
                          "committed nor untouched: %s\n(before recovery: %s)\nrecovery log:\n%s"
                          % (n, m.group(2), describe(now), describe(before), rlog))
            self.assertLoginMatches(login, now)
            self.assertFalse(os.path.exists(journal),
                             "journal left after recovery from crash point %d" % n)
            self.assertFalse(os.path.exists(lock), "dot-lock left after recovery")
            self.assertEqual(os.stat(path).st_uid, uid, "mailbox owner changed")
            # UIDLs of the original messages never change
            for i, msg in enumerate(pt.parse_mbox(now)):
                mid = message_id(msg.raw)
                if mid in uidl_of:
                    self.assertEqual(uidls[i + 1], uidl_of[mid], "UIDL of %s changed" % mid)
            self.assertEqual(len(set(uidls.values())), len(uidls), "duplicate UIDLs")
        crashes = n - 1
        # the switch works: a commit has at least 6 crash points (journal
        # write and fsync, progress write and fsync, truncate, fsync)
        self.assertGreaterEqual(crashes, 6, "only %d crash points hit: %s" % (crashes, labels))
        for what in ("write journal", "fsync journal", "write progress", "truncate mailbox",
                     "fsync mailbox"):
            self.assertIn(what, labels)
        if deleted != set(range(1, len(msgs) + 1)) and max(deleted) < len(msgs) or deliver:
            self.assertIn("write mailbox", labels, "no byte of mail was ever moved")
        self.assertGreater(journals_seen, 0, "no journal seen at any crash point")
        if kind == "root":
            self.assertEqual(leftover_locks, 0,
                             "the monitor left the dead maildrop's dot-lock behind")
        return crashes


SCENARIOS = {
    "first": {1},
    "middle": {3},
    "last": {6},
    "all": {1, 2, 3, 4, 5, 6},
    "mix": {2, 3, 5},
}


def _make_walk(kind, scenario, deliver, user):
    def test(self):
        self.walk(kind, user, SCENARIOS[scenario], deliver)
    test.__doc__ = "crash walk: %s layout, delete %s%s" % (
        kind, scenario, ", deliveries during the session and after the crash" if deliver else "")
    return test


_u = 0
for _kind in ("root", "home"):
    for _sc in SCENARIOS:
        for _deliver in (False, True):
            _u += 1
            setattr(CrashWalk, "test_%s_%s%s" % (_kind, _sc, "_deliver" if _deliver else ""),
                    _make_walk(_kind, _sc, _deliver, "crash%d" % _u))


class OldJournal(CrashWalk):
    """A crash of the version before left a journal of its format (J2,
    with its 8 MB scratch area): the next login, by this version, still
    finishes the commit, at every crash point."""

    crash_env = {"POP3D_TEST_JOURNAL": "J2"}
    journal_magic = b"pop3dJ2\n"


class OldJournalJ3(CrashWalk):
    """The same for a journal of format J3 (its 64 MB scratch area), the
    format of the version before J4's larger scratch area."""

    crash_env = {"POP3D_TEST_JOURNAL": "J3"}
    journal_magic = b"pop3dJ3\n"


class SmallSteps(CrashWalk):
    """Steps through the scratch area smaller than what is left to move
    (as when the disk is nearly full): several steps reuse the scratch
    area, and a crash in any of them recovers."""

    crash_env = {"POP3D_TEST_STEP": "1000"}


for _name in list(vars(CrashWalk)):
    if _name.startswith("test_"):
        setattr(OldJournal, _name, None)
        setattr(OldJournalJ3, _name, None)
        setattr(SmallSteps, _name, None)
OldJournal.test_root_first = _make_walk("root", "first", False, "crash79")
OldJournal.test_home_mix_deliver = _make_walk("home", "mix", True, "crash80")
OldJournalJ3.test_root_first = _make_walk("root", "first", False, "crash81")
OldJournalJ3.test_home_mix_deliver = _make_walk("home", "mix", True, "crash82")
SmallSteps.test_root_first_deliver = _make_walk("root", "first", True, "crash76")
SmallSteps.test_home_mix = _make_walk("home", "mix", False, "crash75")


class LaterJournal(CommitCase):
    """A later pop3d crashed mid-commit and this version was installed
    over it: its journal, of a format this version does not know, may
    describe a half-done move.  It is kept as it is and the mailbox left
    untouched, the login refused [SYS/TEMP] with the reason in the log;
    the version that wrote it finishes the commit."""

    def crash_mid_move(self, user, template, path, orig, deleted):
        """Runs the commit to the first crash point after the mailbox
        has begun to change, its journal left."""
        uid = uid_of(user)
        dele = ["DELE %d" % n for n in sorted(deleted)]
        for n in range(1, 400):
            put_file(path, orig, uid)
            out, rc, log = self.pipe_run(user, template, dele + ["QUIT"], CRASHTEST, n)
            self.assertIsNotNone(CRASH_RE.search(log), "no crash point changed the mailbox")
            if os.path.exists(path + ".lock"):
                old = time.time() - 2 * STALE
                os.utime(path + ".lock", (old, old))
            if os.path.exists(path + JOURNAL) and read(path) != orig:
                return
            self.clean_session(user, template)   # recovers, or not needed
        self.fail("no crash point mid-move")

    def test_unknown_format_kept_and_login_refused(self):
        user = "crash83"
        template, path, d = self.layout("root", user)
        orig = walk_mbox()
        msgs = pt.parse_mbox(orig)
        deleted = SCENARIOS["mix"]
        journal = path + JOURNAL
        self.crash_mid_move(user, template, path, orig, deleted)
        mine = read(journal)
        self.assertEqual(mine[:8], b"pop3dJ4\n")
        later = b"pop3dJ9\n" + mine[8:]
        with open(journal, "r+b") as f:
            f.write(later[:8])
        before = read(path)
        for _ in range(2):
            lines, rc, log = self.pipe_run(user, template, ["STAT", "QUIT"])
            self.assertTrue(lines[2].startswith("-ERR [SYS/TEMP] an interrupted update"),
                            "login with a later version's journal: %r" % lines)
            self.assertIn("interrupted commit not finished journal=%s "
                          "reason=unknown-format" % journal, log)
            self.assertEqual(read(path), before, "mailbox changed")
            self.assertEqual(read(journal), later, "journal changed or removed")
        # the version that wrote it (here this one, its format given back)
        with open(journal, "r+b") as f:
            f.write(mine[:8])
        login, statr, uidls, rlog = self.clean_session(user, template)
        self.assertEqual(read(path), kept_bytes(orig, msgs, deleted))
        self.assertFalse(os.path.exists(journal))


# ----------------------------------------------------------------------
# The dot-lock a killed commit leaves behind.
# ----------------------------------------------------------------------

class DotLockAfterCrash(CommitCase):
    """A maildrop process killed during a commit: the next session must be
    able to log in and recover at once (the monitor survives the kill)."""

    def crash_then_login(self, kind, user):
        template, path, d = self.layout(kind, user)
        orig = walk_mbox()
        msgs = pt.parse_mbox(orig)
        put_file(path, orig, uid_of(user))
        out, rc, log = self.pipe_run(user, template, ["DELE 1", "QUIT"], CRASHTEST, 3)
        self.assertRegex(log, "crash point 3: ")
        lock_left = os.path.exists(path + ".lock")
        t0 = time.monotonic()
        lines, rc, rlog = self.pipe_run(user, template, ["STAT", "QUIT"])
        took = time.monotonic() - t0
        self.assertFalse(lock_left, "%s layout: the dot-lock of the killed maildrop process "
                         "is left behind (%s.lock); the next login got %r after %.1f s"
                         % (kind, path, lines[2:3], took))
        self.assertTrue(lines[2].startswith("+OK maildrop has"), lines)
        self.assertTrue(read(path) in (orig, kept_bytes(orig, msgs, {1})), describe(read(path)))
        self.assertFalse(os.path.exists(path + JOURNAL))

    def test_root_spool(self):
        self.crash_then_login("root", "crash21")

    def test_user_dir(self):
        self.crash_then_login("home", "crash22")


# ----------------------------------------------------------------------
# Random kill -9 during commits of a 100 MB mailbox, procmail delivering.
# ----------------------------------------------------------------------

class RandomKill(CommitCase):
    USER = "crash23"
    ROUNDS = 14

    def make_mailbox(self, rng, path, uid):
        parts = []
        total = 0
        n = 0
        while total < 105 * 1024 * 1024:
            n += 1
            size = rng.randint(20 * 1024, 200 * 1024)
            body = base64.encodebytes(rng.randbytes(size * 3 // 4))
            head = (b"From orig%d@example.org Mon Jan  1 10:00:00 2024\n" % n
                    + b"Message-ID: <orig-%d@crash.example.org>\n" % n
                    + b"Subject: original %d\nStatus: O\n\n" % n)
            parts.append(head + body + b"\n")
            total += len(parts[-1])
        data = b"".join(parts)
        put_file(path, data, uid)
        return data, n

    def procmail_loop(self, path, rcfile, stop, delivered, failures, uid):
        mail_gid = grp.getgrnam("mail").gr_gid
        i = 0
        while not stop.is_set():
            i += 1
            tag = b"pm-%d" % i
            msg = (b"From procmail@example.org Tue Jan  2 10:00:00 2024\n"
                   + b"Message-ID: <%s@mda.example.org>\nSubject: %s\n\n" % (tag, tag)
                   + base64.encodebytes(hashlib.sha512(tag).digest() * (10 + i % 40)))
            try:
                r = subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % mail_gid,
                                    "--clear-groups", "procmail", "-m", rcfile],
                                   input=msg, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   timeout=120)
            except subprocess.TimeoutExpired:
                failures.append("procmail %d timed out" % i)
                continue
            if r.returncode == 0:
                delivered[message_id(msg)] = msg.split(b"\n", 1)[1]
            else:
                failures.append("procmail %d: exit %d %r" % (i, r.returncode, r.stderr[-300:]))
            time.sleep(0.02)

    def find_maildrop(self, srv):
        for p in srv.pids():
            try:
                if pt.proc_comm(p) == "pop3d: maildrop":
                    ppid = pt.proc_stat(p)[1]
                    if pt.proc_comm(ppid) == "pop3d: monitor":
                        return p
            except (FileNotFoundError, ProcessLookupError, TypeError):
                pass
        return None

    def test_kill9_during_commits_with_procmail_delivering(self):
        t_start = time.monotonic()
        user = self.USER
        uid = uid_of(user)
        rng = random.Random(20240101)
        d = self.cenv.new_dir("mailspool", 0o2775, 0, grp.getgrnam("mail").gr_gid)
        path = os.path.join(d, user)
        journal = path + JOURNAL
        data, count = self.make_mailbox(rng, path, uid)
        self.assertGreaterEqual(len(data), 100 * 1024 * 1024)
        originals = {}
        for m in pt.parse_mbox(data):
            originals[message_id(m.raw)] = (m.from_line, m.raw)
        self.assertEqual(len(originals), count)
        del data
        rcfile = os.path.join(self.cenv.root, "procmailrc-%d" % os.getpid())
        with open(rcfile, "w") as f:
            f.write("SHELL=/bin/sh\nLOCKSLEEP=1\n:0:\n%s\n" % path)
        os.chmod(rcfile, 0o644)
        srv = self.server(os.path.join(d, "%u"), timeout=120)
        stop = threading.Event()
        delivered = {}
        failures = []
        th = threading.Thread(target=self.procmail_loop,
                              args=(path, rcfile, stop, delivered, failures, uid), daemon=True)
        th.start()
        deleted_sure = set()      # committed: must be absent
        deleted_maybe = set()     # commit killed: absent or present once
        kills_mid_commit = 0
        in_use = 0
        pending = set()           # deletions of the commit killed last
        commit_time = None
        report = []
        try:
            # ROUNDS rounds, and more while the preconditions asserted at
            # the end are not met yet: a loaded machine delivers less and
            # hits fewer commits in the same number of rounds
            rnd = -1
            while True:
                rnd += 1
                if rnd >= self.ROUNDS and (rnd >= 3 * self.ROUNDS or (
                        len(delivered) >= 20 and kills_mid_commit >= 3)):
                    break
                c = self.login_retry(srv, user)
                now = locked_read(path)
                parsed = pt.parse_mbox(now)
                n = int(c.login_reply.split()[3])
                self.assertLessEqual(n, len(parsed))
                self.assertEqual(c.login_reply, "+OK maildrop has %s (%d octets)"
                                 % (pt.messages(n), sum(m.size for m in parsed[:n])),
                                 "round %d: login reply vs the file" % rnd)
                ids = [message_id(m.raw) for m in parsed[:n]]
                dups = {i for i, k in collections.Counter(ids).items() if k > 1}
                self.assertFalse(dups, "round %d: messages twice after recovery: %s" % (rnd, dups))
                # the killed commit before: all of its deletions or none
                back = len(pending & set(ids))
                self.assertIn(back, (0, len(pending)), "round %d: %d of the %d messages of the "
                              "killed commit are back" % (rnd, back, len(pending)))
                pending = set()
                self.assertEqual(os.stat(path).st_uid, uid, "mailbox owner changed")
                orig_pos = [i + 1 for i, mid in enumerate(ids) if mid in originals]
                # a contiguous block near the top: long commits that move
                # nearly all of the file in 1 MB steps
                k = max(1, len(orig_pos) // 12)
                if rnd % 3 == 0:
                    start = 0
                elif rnd % 3 == 1:
                    start = len(orig_pos) // 4
                else:
                    start = len(orig_pos) // 2
                block = orig_pos[start:start + k]
                gone = {ids[p - 1] for p in block}
                c.send("".join("DELE %d\r\n" % p for p in block))
                for p in block:
                    self.assertEqual(c.readline().decode(), "+OK message %d deleted" % p)
                to_move = len(now) - parsed[block[-1] - 1].end
                if commit_time is None:
                    # calibration: one commit undisturbed
                    t0 = time.monotonic()
                    r = c.cmd("QUIT")
                    took = time.monotonic() - t0
                    c.close()
                    if r == IN_USE_COMMIT:
                        # procmail holds the dot-lock and waits in fcntl
                        in_use += 1
                        report.append("round %d: %d deleted, %s after %.1f s"
                                      % (rnd, len(gone), r, took))
                        continue
                    self.assertTrue(r.startswith("+OK pop3d signing off"), r)
                    commit_time = took
                    rate = to_move / commit_time
                    deleted_sure |= gone
                    report.append("round %d: %d deleted, commit %.2f s, %.0f MB/s (calibration)"
                                  % (rnd, len(gone), commit_time, rate / 1e6))
                    continue
                c.send("QUIT\r\n")
                # the commit has begun once the journal exists
                seen = False
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    if os.path.exists(journal):
                        seen = True
                        break
                    if self.find_maildrop(srv) is None:
                        break
                    time.sleep(0.002)
                # a random instant within the expected length of this commit
                time.sleep(rng.uniform(0, 0.8 * to_move / rate))
                pid = self.find_maildrop(srv)
                in_commit = os.path.exists(journal)
                killed = pid is not None and kill_pid(pid)
                try:
                    r = c.readline().decode()
                except (pt.Closed, OSError):
                    r = "(connection closed)"
                c.close()
                self.assertTrue(srv.wait_idle(30), "pop3d did not exit after the kill")
                if r.startswith("+OK pop3d signing off"):
                    deleted_sure |= gone
                    outcome = "committed"
                elif r == IN_USE_COMMIT:
                    in_use += 1
                    outcome = "nothing deleted (%s)" % r
                else:
                    deleted_maybe |= gone
                    pending = set(gone)
                    outcome = "killed (%s)" % r
                    if killed and (in_commit or seen):
                        kills_mid_commit += 1
                report.append("round %d: %d deleted, journal seen %s, kill %s, %s"
                              % (rnd, len(gone), seen, killed, outcome))
                self.assertEqual(os.stat(path).st_uid, uid, "mailbox owner changed")
        finally:
            stop.set()
            th.join(180)
        self.assertFalse(th.is_alive(), "the procmail loop did not stop")
        # the final clean session recovers whatever was interrupted
        c = self.login_retry(srv, user)
        self.quit(srv, c, "+OK pop3d signing off")
        final = read(path)
        self.assertFalse(os.path.exists(journal), "journal left after the final session")
        self.assertFalse(os.path.exists(path + ".lock"), "dot-lock left behind")
        st = os.stat(path)
        self.assertEqual((st.st_uid, stat.S_IMODE(st.st_mode)), (uid, 0o600))
        msgs = pt.parse_mbox(final)
        back = len(pending & {message_id(m.raw) for m in msgs})
        self.assertIn(back, (0, len(pending)), "final: %d of the %d messages of the killed "
                      "commit are back" % (back, len(pending)))
        seen_ids = {}
        for m in msgs:
            mid = message_id(m.raw)
            seen_ids.setdefault(mid, []).append(m)
        problems = []
        for mid, ms in seen_ids.items():
            if len(ms) > 1:
                problems.append("%s present %d times" % (mid, len(ms)))
            if mid not in originals and mid not in delivered:
                problems.append("unknown message %s (%d bytes)" % (mid, len(ms[0].raw)))
        for mid, (fl, raw) in originals.items():
            ms = seen_ids.get(mid, [])
            if mid in deleted_sure:
                if ms:
                    problems.append("%s deleted by a completed commit but present" % mid)
            elif mid in deleted_maybe:
                pass
            elif not ms:
                problems.append("original %s lost" % mid)
            elif (ms[0].from_line, ms[0].raw) != (fl, raw):
                problems.append("original %s changed" % mid)
        for mid, raw in delivered.items():
            ms = seen_ids.get(mid, [])
            if not ms:
                problems.append("delivered %s lost" % mid)
            elif ms[0].raw != raw:
                problems.append("delivered %s changed" % mid)
        took = time.monotonic() - t_start
        sys.stderr.write("\nRandomKill: %s\n  %d deliveries, %d procmail failures, "
                         "%d kills mid-commit, %d commits refused [IN-USE], %.0f s\n"
                         % ("\n  ".join(report), len(delivered), len(failures),
                            kills_mid_commit, in_use, took))
        self.assertEqual(problems[:20], [], "%d problems" % len(problems))
        self.assertEqual(failures, [], "procmail failed")
        self.assertGreaterEqual(len(delivered), 20, "too few deliveries during the test")
        self.assertGreaterEqual(kills_mid_commit, 3, "too few kills hit a commit: " + str(report))

    def login_retry(self, srv, user):
        """Login; a lock held by procmail may give [IN-USE]: try again."""
        for _ in range(5):
            c = self.connect(srv, timeout=180)
            self.assertEqual(c.cmd("USER " + user), "+OK send PASS")
            r = c.cmd("PASS " + pw_of(user))
            if r.startswith("+OK maildrop has "):
                c.login_reply = r
                return c
            self.assertTrue(r.startswith("-ERR [IN-USE]"), "PASS: %r; log:\n%s" % (r, srv.log()))
            c.close()
            time.sleep(1)
        self.fail("five logins in a row got [IN-USE]")


# ----------------------------------------------------------------------
# Faults: no space, read-only, changed, removed, locks.
# ----------------------------------------------------------------------

class Faults(CommitCase):

    def small_mbox(self, n=5):
        return pt.mbox_bytes([(pt.from_line(i), pt.msg(i, b"fault %d" % i, body_of(i, 700 + 300 * i),
                                                       extra_headers=b"Status: O\n"))
                              for i in range(1, n + 1)])

    def retr_all(self, c, data):
        msgs = pt.parse_mbox(data)
        for i, m in enumerate(msgs):
            self.assertEqual(c.cmd("RETR %d" % (i + 1)), "+OK %d octets" % m.size)
            self.assertEqual(c.read_until_dot(), m.wire)

    # ENOSPC ---------------------------------------------------------------

    def test_enospc_journal_nothing_deleted(self):
        user = "crash24"
        mnt = self.cenv.new_dir("tmpfs")
        self.mount(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", mnt], mnt)
        path = os.path.join(mnt, user)
        data = self.small_mbox()
        put_file(path, data, uid_of(user))
        # fill the file system
        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while True:
                os.write(fd, b"x" * 4096)
        except OSError as e:
            self.assertEqual(e.errno, errno.ENOSPC)
        finally:
            os.close(fd)
        fd = os.open(os.path.join(mnt, "probe"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            with self.assertRaises(OSError) as cm:
                os.write(fd, b"y")
            self.assertEqual(cm.exception.errno, errno.ENOSPC, "the tmpfs is not full")
        finally:
            os.close(fd)
            os.unlink(os.path.join(mnt, "probe"))
        before = pt.file_state(path)
        srv = self.server(os.path.join(mnt, "%u"))
        c = self.login(srv, user)
        self.assertLoginMatches(c.login_reply, data)
        for n in (1, 3):
            self.assertEqual(c.cmd("DELE %d" % n), "+OK message %d deleted" % n)
        self.quit(srv, c, SYS_TEMP_NOSPACE)
        self.assertEqual(pt.file_state(path), before, "mailbox changed by a failed commit")
        self.assertEqual(sorted(os.listdir(mnt)), sorted(["filler", user]),
                         "files left behind (journal, lock)")
        # still served, whole, while the disk is full
        c = self.login(srv, user)
        self.assertLoginMatches(c.login_reply, data)
        self.retr_all(c, data)
        self.quit(srv, c, "+OK pop3d signing off")
        # with space again the same deletions go through
        os.unlink(filler)
        c = self.login(srv, user)
        for n in (1, 3):
            c.cmd("DELE %d" % n)
        self.quit(srv, c, "+OK pop3d signing off (3 messages left)")
        self.assertEqual(read(path), kept_bytes(data, pt.parse_mbox(data), {1, 3}))

    # read-only -------------------------------------------------------------

    def test_read_only_bind_mount(self):
        user = "crash25"
        spool = self.cenv.new_dir("rwspool")
        path = os.path.join(spool, user)
        data = self.small_mbox()
        put_file(path, data, uid_of(user))
        ro = self.cenv.new_dir("rospool")
        self.mount(["mount", "--bind", spool, ro], ro)
        subprocess.run(["mount", "-o", "remount,ro,bind", ro], check=True)
        with self.assertRaises(OSError) as cm:
            open(os.path.join(ro, "probe"), "wb")
        self.assertEqual(cm.exception.errno, errno.EROFS)
        before = pt.file_state(path)
        srv = self.server(os.path.join(ro, "%u"))
        c = self.login(srv, user)
        self.assertLoginMatches(c.login_reply, data)
        self.retr_all(c, data)
        self.assertEqual(c.cmd("DELE 2"), "+OK message 2 deleted")
        self.assertEqual(c.cmd("DELE 5"), "+OK message 5 deleted")
        self.quit(srv, c, SYS_PERM_RDONLY)
        self.assertEqual(pt.file_state(path), before)
        self.assertEqual(os.listdir(spool), [user])
        # without deletions QUIT is fine
        c = self.login(srv, user)
        self.quit(srv, c, "+OK pop3d signing off (5 messages left)")
        self.assertEqual(pt.file_state(path), before)

    # a mail reader's rewrite --------------------------------------------------

    def reader_rewrite(self, path, change):
        """As mutt: fcntl lock, dot-lock, rewrite in place, unlock."""
        with open(path, "r+b") as f:
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            lock = path + ".lock"
            os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            try:
                new = change(f.read())
                f.seek(0)
                f.write(new)
                f.truncate()
                f.flush()
                os.fsync(f.fileno())
            finally:
                os.unlink(lock)
                fcntl.lockf(f, fcntl.LOCK_UN)
        return new

    def reader_case(self, user, change, kind="root"):
        template, path, d = self.layout(kind, user)
        data = self.small_mbox()
        put_file(path, data, uid_of(user))
        srv = self.server(template)
        c = self.login(srv, user)
        self.assertLoginMatches(c.login_reply, data)
        self.assertEqual(c.cmd("DELE 1"), "+OK message 1 deleted")
        self.assertEqual(c.cmd("DELE 3"), "+OK message 3 deleted")
        ino = os.stat(path).st_ino
        new = self.reader_rewrite(path, change)
        self.assertNotEqual(new, data)
        r = c.cmd("QUIT")
        c.close()
        self.assertTrue(srv.wait_idle(15))
        self.assertEqual(os.stat(path).st_ino, ino)
        self.assertFalse(os.path.exists(path + JOURNAL))
        self.assertFalse(os.path.exists(path + ".lock"))
        return r, data, new, read(path)

    def test_reader_marks_message_read(self):
        def change(data):
            msgs = pt.parse_mbox(data)
            m = msgs[1]           # message 2: "Status: O" -> "Status: RO"
            i = data.index(b"Status: O\n", m.start)
            return data[:i] + b"Status: RO\n" + data[i + 10:]
        r, data, new, now = self.reader_case("crash26", change)
        self.assertEqual(r, SYS_TEMP_CHANGED)
        self.assertEqual(now, new, "the reader's change was not kept")

    def test_reader_expunges_a_message(self):
        def change(data):
            msgs = pt.parse_mbox(data)
            return b"".join(data[m.start:m.end] for i, m in enumerate(msgs) if i != 3)
        r, data, new, now = self.reader_case("crash27", change)
        self.assertEqual(r, SYS_TEMP_CHANGED)
        self.assertEqual(now, new)

    def test_reader_marks_read_and_expunges_user_dir(self):
        def change(data):
            msgs = pt.parse_mbox(data)
            out = b"".join(data[m.start:m.end] for i, m in enumerate(msgs) if i != 4)
            return out.replace(b"Status: O\n", b"Status: RO\n", 1)
        r, data, new, now = self.reader_case("crash28", change, "home")
        self.assertEqual(r, SYS_TEMP_CHANGED)
        self.assertEqual(now, new)

    def test_reader_same_size_status_change_kept(self):
        # "Status: O" -> "Status: R": same length.  pop3d may refuse the
        # commit or go ahead; either way the reader's change stays.
        def change(data):
            msgs = pt.parse_mbox(data)
            i = data.index(b"Status: O\n", msgs[1].start)
            return data[:i] + b"Status: R\n" + data[i + 10:]
        r, data, new, now = self.reader_case("crash29", change)
        if r == SYS_TEMP_CHANGED:
            self.assertEqual(now, new)
        else:
            self.assertEqual(r, "+OK pop3d signing off (3 messages left)")
            self.assertEqual(now, kept_bytes(new, pt.parse_mbox(new), {1, 3}))

    # removed or replaced --------------------------------------------------------

    def test_mailbox_removed_during_session(self):
        user = "crash30"
        template, path, d = self.layout("root", user)
        data = self.small_mbox()
        put_file(path, data, uid_of(user))
        srv = self.server(template)
        c = self.login(srv, user)
        self.assertEqual(c.cmd("DELE 2"), "+OK message 2 deleted")
        os.unlink(path)
        self.quit(srv, c, SYS_TEMP_REPLACED)
        self.assertEqual(os.listdir(d), [], "files created after the mailbox was removed")

    def test_mailbox_renamed_and_replaced_during_session(self):
        for kind, user in (("root", "crash31"), ("home", "crash32")):
            with self.subTest(kind):
                template, path, d = self.layout(kind, user)
                data = self.small_mbox()
                put_file(path, data, uid_of(user))
                srv = self.server(template)
                c = self.login(srv, user)
                self.assertEqual(c.cmd("DELE 1"), "+OK message 1 deleted")
                self.assertEqual(c.cmd("DELE 4"), "+OK message 4 deleted")
                os.rename(path, path + ".old")
                newdata = self.small_mbox(2).replace(b"fault", b"fresh")
                put_file(path, newdata, uid_of(user))
                old_state = pt.file_state(path + ".old")
                new_state = pt.file_state(path)
                self.quit(srv, c, SYS_TEMP_REPLACED)
                self.assertEqual(pt.file_state(path), new_state, "the new mailbox was touched")
                self.assertEqual(pt.file_state(path + ".old"), old_state)
                self.assertEqual(sorted(os.listdir(d)), sorted([os.path.basename(path),
                                                                os.path.basename(path) + ".old"]))

    # dot-locks ----------------------------------------------------------------

    def test_held_dot_lock_in_use_after_10s(self):
        user = "crash33"
        template, path, d = self.layout("root", user)
        data = self.small_mbox()
        put_file(path, data, uid_of(user))
        lock = path + ".lock"
        os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        lstate = pt.file_state(lock)
        srv = self.server(template)
        c = self.connect(srv, timeout=40)
        self.assertEqual(c.cmd("USER " + user), "+OK send PASS")
        t0 = time.monotonic()
        r = c.cmd("PASS " + pw_of(user))
        took = time.monotonic() - t0
        self.assertTrue(r.startswith("-ERR [IN-USE]"), r)
        self.assertTrue(7.5 <= took <= 20, "gave up after %.1f s, expected about 10 s" % took)
        c.close()
        self.assertTrue(srv.wait_idle(15))
        self.assertEqual(pt.file_state(lock), lstate, "someone else's fresh dot-lock was touched")
        self.assertEqual(read(path), data)
        os.unlink(lock)

    def test_stale_dot_lock_removed(self):
        for kind, user in (("root", "crash34"), ("home", "crash35")):
            with self.subTest(kind):
                template, path, d = self.layout(kind, user)
                data = self.small_mbox()
                put_file(path, data, uid_of(user))
                lock = path + ".lock"
                os.close(os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                old = time.time() - 10 * 60
                os.utime(lock, (old, old))
                srv = self.server(template)
                t0 = time.monotonic()
                c = self.login(srv, user)
                self.assertLess(time.monotonic() - t0, 5, "waited for a stale dot-lock")
                self.assertLoginMatches(c.login_reply, data)
                self.assertEqual(c.cmd("DELE 2"), "+OK message 2 deleted")
                self.quit(srv, c, "+OK pop3d signing off (4 messages left)")
                self.assertFalse(os.path.exists(lock), "stale dot-lock still there")
                self.assertEqual(read(path), kept_bytes(data, pt.parse_mbox(data), {2}))


if __name__ == "__main__":
    import e2e
    sys.exit(e2e.main(['e2e_commit'], 'e2e_commit'))
