"""The root monitor trusts nothing a user or a child process controls.

  - Symlink: a user swaps the directory of her maildrop for a symbolic
    link to a root-owned directory during a session; root must never
    create, remove or touch anything there (dot-lock, journal, stale
    lock), while the monitor still serves a spool only root controls,
    also when it is reached through a link root made.
  - Contract: the test build plays a compromised session or maildrop
    process (POP3D_TEST_IPC) sending requests out of state, from the wrong
    process, malformed, with a descriptor, or too often: the monitor ends
    the whole session each time, and never answers more than
    MAX_AUTH_FAILURES password guesses.
  - Timing: a failure is answered at the same instant whatever the
    account, and an unknown user costs the work of the costliest hash.
  - Accounts: expired passwords and gid 0 accounts never log in.
"""

import crypt
import ctypes
import os
import re
import signal
import subprocess
import time
import unittest

import pop3test as pt

TYPES = pt.ipc_types()


def wait_for(pred, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.02)


def dir_state(path):
    """What any creation or removal in a directory would change."""
    st = os.stat(path)
    return (sorted(os.listdir(path)), st.st_mtime_ns, st.st_ctime_ns)


class HomeMaildrop(pt.Pop3TestCase):
    """The manual's own example: -m %h/Mail/inbox, a directory the user
    owns, and a root-owned directory she would like root to write in."""

    def setUp(self):
        super().setUp()
        home = self.env.home("alice")
        self.maildir = os.path.join(home, "Mail")
        self.real = os.path.join(home, "Mail.real")
        for d in (self.maildir, self.real):
            if os.path.islink(d):
                os.unlink(d)
            elif os.path.isdir(d):
                subprocess.run(["rm", "-rf", d], check=True)
        os.mkdir(self.maildir, 0o700)
        os.chown(self.maildir, pt.uid_of("alice"), pt.USERS["alice"][2])
        self.inbox = os.path.join(self.maildir, "inbox")
        pt.write_mailbox(self.inbox, pt.plain_mbox(3))
        self.target = self.env.new_dir("target")     # root's, 0755
        self.before = dir_state(self.target)

    def tearDown(self):
        super().tearDown()
        for d in (self.maildir, self.real):
            if os.path.islink(d):
                os.unlink(d)
            elif os.path.isdir(d):
                subprocess.run(["rm", "-rf", d], check=True)

    def args(self):
        return ["-P", "-a", self.env.passwd, "-t", "30", "-m", "%h/Mail/inbox"]

    def swap(self, writable=True):
        """~/Mail becomes a link to the root-owned target."""
        os.rename(self.maildir, self.real)
        if not writable:
            os.chmod(self.real, 0o500)
        os.symlink(self.target, self.maildir)
        os.lchown(self.maildir, pt.uid_of("alice"), pt.USERS["alice"][2])

    def assertTargetUntouched(self):
        self.assertEqual(dir_state(self.target), self.before,
                         "root acted in the directory the user's link points to")

    def maildrop_pid(self, srv):
        pids = [p for p in srv.pids() if pt.proc_comm(p) == "pop3d: maildrop"]
        self.assertEqual(len(pids), 1, "one maildrop process")
        return pids[0]

    def test_dotlock_not_made_through_a_swapped_link(self):
        """Her own directory made unwritable, the maildrop process asks
        the monitor for the dot-lock: it must not make it in the
        directory the link now names."""
        self.server(self.args())
        c = self.login()
        self.swap(writable=False)
        self.assertReply(c.cmd("DELE 1"), "+OK")
        r = c.cmd("QUIT")
        self.assertTrue(r.startswith("-ERR"), "QUIT: " + r)
        c.close()
        self.assertTrue(self.srv.wait_idle(10))
        self.assertTargetUntouched()
        self.assertIn("spool directory refused action=dot-lock", self.srv.log())
        os.chmod(self.real, 0o700)
        self.assertEqual(len(pt.parse_mbox(pt.read_file(os.path.join(self.real, "inbox")))), 3)

    def test_journal_not_made_through_a_swapped_link(self):
        """The swap at the instant between the commit's checks and its
        journal (held there by the test build): root must not create the
        journal in the target, and nothing is deleted."""
        self.server(self.args(), binary=pt.CRASHTEST,
                    env={"POP3D_TEST_PAUSE": "journal:3"})
        c = self.login()
        self.assertReply(c.cmd("DELE 1"), "+OK")
        c.send("QUIT\r\n")
        wait_for(lambda: "test: paused at journal" in self.srv.log(), what="the pause")
        self.swap()
        r = c.readline().decode()
        self.assertTrue(r.startswith("-ERR"), "QUIT: " + r)
        c.close()
        self.assertTrue(self.srv.wait_idle(15))
        self.assertTargetUntouched()
        self.assertEqual(len(pt.parse_mbox(pt.read_file(os.path.join(self.real, "inbox")))), 3)

    def test_stale_lock_not_removed_through_a_swapped_link(self):
        """A lock in the target names the maildrop process, which dies
        after the swap: it must stay."""
        self.server(self.args())
        c = self.login()
        pid = self.maildrop_pid(self.srv)
        lock = os.path.join(self.target, "inbox.lock")
        with open(lock, "w") as f:
            f.write("%d\n" % pid)
        self.before = dir_state(self.target)
        self.swap()
        os.kill(pid, signal.SIGKILL)
        c.close()
        self.assertTrue(self.srv.wait_idle(10))
        self.assertTrue(os.path.exists(lock), "root removed a lock through the user's link")
        self.assertTargetUntouched()

    def test_dead_maildrop_lock_cleared_as_the_user(self):
        """Without any swap, the dot-lock a killed maildrop process held in
        her directory is removed at once (by a child with her ids), so
        that deliveries need not wait for it to go stale."""
        self.server(self.args(), binary=pt.CRASHTEST,
                    env={"POP3D_TEST_PAUSE": "journal:30"})
        c = self.login()
        self.assertReply(c.cmd("DELE 1"), "+OK")
        c.send("QUIT\r\n")
        wait_for(lambda: "test: paused at journal" in self.srv.log(), what="the pause")
        lock = self.inbox + ".lock"
        self.assertTrue(os.path.exists(lock), "the maildrop process holds the dot-lock")
        self.assertEqual(os.stat(lock).st_uid, pt.uid_of("alice"))
        os.kill(self.maildrop_pid(self.srv), signal.SIGKILL)
        c.close()
        self.assertTrue(self.srv.wait_idle(10))
        self.assertFalse(os.path.exists(lock), "the dead maildrop's dot-lock stayed")
        self.assertIn("stale dot-lock removed", self.srv.log())
        self.assertEqual(len(pt.parse_mbox(pt.read_file(self.inbox))), 3)


class RootSpool(pt.Pop3TestCase):
    """Where only root can act, the monitor still does: a spool root owns,
    also reached through a link root made, and a group-mail spool."""

    def commit_one(self, template, spool):
        pt.write_mailbox(os.path.join(spool, "alice"), pt.plain_mbox(3))
        self.server(["-P", "-a", self.env.passwd, "-t", "30", "-m", template])
        c = self.login()
        self.assertReply(c.cmd("DELE 1"), "+OK")
        self.quit(c)
        self.assertEqual(len(pt.parse_mbox(pt.read_file(os.path.join(spool, "alice")))), 2)
        self.assertNotIn("refused", self.srv.log())

    def test_root_link_to_spool(self):
        spool = self.env.new_dir("realspool")
        parent = self.env.new_dir("links")
        link = os.path.join(parent, "mail")
        os.symlink(spool, link)
        self.commit_one(os.path.join(link, "%u"), spool)

    def test_user_link_to_spool_is_not_followed(self):
        """The same link made by the user: root acts for nobody there, so
        the commit cannot lock and deletes nothing."""
        spool = self.env.new_dir("realspool")
        parent = self.env.new_dir("links")
        link = os.path.join(parent, "mail")
        os.symlink(spool, link)
        os.lchown(link, pt.uid_of("alice"), pt.USERS["alice"][2])
        pt.write_mailbox(os.path.join(spool, "alice"), pt.plain_mbox(3))
        before = dir_state(spool)
        self.server(["-P", "-a", self.env.passwd, "-t", "30", "-m",
                     os.path.join(link, "%u")])
        c = self.connect()
        c.cmd("USER alice")
        r = c.cmd("PASS " + pt.password("alice"))
        self.assertTrue(r.startswith("-ERR"), "PASS: " + r)
        c.close()
        self.assertTrue(self.srv.wait_idle(10))
        self.assertEqual(dir_state(spool), before)
        self.assertIn("spool directory refused action=dot-lock", self.srv.log())


class Relogin(pt.Pop3TestCase):
    """A client that logs in again the moment it has the answer to QUIT
    (fetchmail polling several folders, a phone) finds the user free:
    the session lock goes when the maildrop process is done."""

    def test_login_right_after_quit(self):
        self.put_mbox(pt.plain_mbox(40))
        refused = 0
        for _ in range(20):
            c = self.connect(concurrent=True)
            c.cmd("USER alice")
            r = c.cmd("PASS " + pt.password("alice"))
            if r.startswith("-ERR [IN-USE]"):
                refused += 1
            else:
                self.assertReply(r, "+OK")
                self.assertReply(c.cmd("DELE 1"), "+OK")
                self.assertReply(c.cmd("QUIT"), "+OK")
            c.close()
        self.assertEqual(refused, 0, "logins refused [IN-USE] right after a QUIT")

    def test_login_waits_for_a_lock_let_go_of_at_once(self):
        """The previous session's monitor lets go of the lock a moment
        after its client has the QUIT answer: the login waits for it
        (here: held by the test until the monitor blocks in flock(2)),
        rather than answering [IN-USE]."""
        import fcntl
        self.put_mbox(pt.plain_mbox(2))
        os.makedirs("/run/pop3d", mode=0o700, exist_ok=True)
        fd = os.open("/run/pop3d/alice", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            c = self.connect()
            c.cmd("USER alice")
            c.send("PASS %s\r\n" % pt.password("alice"))
            deadline = time.monotonic() + 10
            blocked = False
            while not blocked and time.monotonic() < deadline:
                for pid in self.srv.pids():
                    try:
                        with open("/proc/%d/syscall" % pid) as f:
                            nr = f.read().split()[0]
                    except (OSError, IndexError):
                        continue
                    if nr == "73":      # flock on x86_64
                        blocked = True
                time.sleep(0.005)
            self.assertTrue(blocked, "no monitor waited in flock(2)")
            fcntl.flock(fd, fcntl.LOCK_UN)
            self.assertReply(c.readline().decode(), "+OK maildrop has 2 messages")
            self.assertReply(c.cmd("QUIT"), "+OK")
        finally:
            os.close(fd)


class Contract(pt.Pop3TestCase):
    """Requests a compromised child could send: each ends the session."""

    def inject(self, spec, login=False):
        self.server(binary=pt.CRASHTEST, env={"POP3D_TEST_IPC": spec})
        pt.write_mailbox(self.mbox_path(), pt.plain_mbox(2))
        try:
            c = pt.Client(self.srv.host, self.srv.port)
            self.clients.append(c)
            if login:
                c.readline()
                c.cmd("USER alice")
                c.send("PASS %s\r\n" % pt.password("alice"))
            c.expect_closed(20)
        except (pt.Closed, OSError):
            pass
        self.assertTrue(self.srv.wait_idle(20), "pop3d still runs")
        return self.srv.log()

    def spec(self, proc, name, length, fd=0, count=1):
        return "%s:%d:%s:%d:%d" % (proc, TYPES[name], length, fd, count)

    def assertFatal(self, log, what):
        self.assertRegex(log, r"\[monitor\] (invalid message received|unexpected request"
                         r"|dot-(un)?lock|unexpected PROXY)", "monitor did not refuse " + what)

    def test_session_requests(self):
        cases = [
            ("maildrop-only request", self.spec("session", "IPC_DOTLOCK", 0)),
            ("journal from session", self.spec("session", "IPC_JOURNAL_CREATE", 0)),
            ("short log", self.spec("session", "IPC_LOG", 2)),
            ("log with a descriptor", self.spec("session", "IPC_LOG", 4, fd=1)),
            ("malformed auth", self.spec("session", "IPC_AUTH", 5)),
            ("index to the monitor", self.spec("session", "IPC_INDEX", 80)),
            ("unknown type", "session:%d:0:0:1" % (TYPES["IPC_TYPE_MAX"] + 3)),
            ("monitor's answer", self.spec("session", "IPC_AUTH_OK", 0, fd=1)),
            ("PROXY without -x", self.spec("session", "IPC_PROXY", 4)),
        ]
        for what, spec in cases:
            with self.subTest(what):
                log = self.inject(spec)
                self.assertFatal(log, what)
                self.assertNotIn("] login user=", log)
                self.srv.stop()
                self.servers.remove(self.srv)

    def test_maildrop_requests(self):
        cases = [
            ("auth from maildrop", self.spec("maildrop", "IPC_AUTH", "auth")),
            ("unlock without lock", self.spec("maildrop", "IPC_DOTUNLOCK", 0)),
            ("lock with payload", self.spec("maildrop", "IPC_DOTLOCK", 4)),
            ("lock twice", self.spec("maildrop", "IPC_DOTLOCK", 0, count=2)),
            ("journal twice", self.spec("maildrop", "IPC_JOURNAL_CREATE", 0, count=2)),
            ("journal removed thrice", self.spec("maildrop", "IPC_JOURNAL_REMOVE", 0, count=3)),
            ("session's answer", self.spec("maildrop", "IPC_COMMIT_OK", 4)),
            ("journal set aside twice", self.spec("maildrop", "IPC_JOURNAL_STALE", 0,
                                                   count=2)),
        ]
        for what, spec in cases:
            with self.subTest(what):
                log = self.inject(spec, login=True)
                self.assertFatal(log, what)
                self.srv.stop()
                self.servers.remove(self.srv)

    def test_allowed_request_is_not_fatal(self):
        """The control: a log line is what a maildrop process may send."""
        self.server(binary=pt.CRASHTEST,
                    env={"POP3D_TEST_IPC": self.spec("maildrop", "IPC_LOG", 4)})
        self.put_mbox(pt.plain_mbox(2))
        c = self.login()
        self.quit(c)
        self.assertNotIn("invalid message", self.srv.log())

    def test_password_guesses_bounded_by_the_monitor(self):
        """A session process that ignores the final answer and keeps
        asking: three guesses are checked, the fourth request is fatal."""
        log = self.inject(self.spec("session", "IPC_AUTH", "auth", count=10))
        self.assertEqual(log.count("login failed"), pt_failures())
        self.assertIn("unexpected request %d from session" % TYPES["IPC_AUTH"], log)

    def test_session_killed_after_final_answer(self):
        """It asks no more but does not go: the monitor kills it."""
        self.server(binary=pt.CRASHTEST,
                    env={"POP3D_TEST_IPC": self.spec("session", "IPC_AUTH", "auth", count=3)})
        c = pt.Client(self.srv.host, self.srv.port, timeout=30)
        self.clients.append(c)
        self.assertTrue(c.readline().startswith(pt.GREETING))
        self.assertTrue(c.expect_closed(30), "connection still open")
        self.assertTrue(self.srv.wait_idle(10))
        log = self.srv.log()
        self.assertEqual(log.count("login failed"), pt_failures())
        self.assertIn("session process killed reason=too-many-failures", log)

    def test_tls_field_cannot_forge_a_log_line(self):
        log = self.inject(self.spec("session", "IPC_AUTH", "authlf"))
        self.assertIn("invalid", log)
        self.assertNotRegex(log, r"(?m)^\[monitor\] login user=root")
        self.assertNotIn("\n[monitor] login user=root", log)


def pt_failures():
    with open(os.path.join(pt.TOP_DIR, "params.h")) as f:
        return int(re.search(r"#define MAX_AUTH_FAILURES\s+(\d+)", f.read()).group(1))


def gensalt(prefix, count):
    lib = ctypes.CDLL("libcrypt.so.1")
    lib.crypt_gensalt.restype = ctypes.c_char_p
    lib.crypt_gensalt.argtypes = [ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p, ctypes.c_int]
    return lib.crypt_gensalt(prefix.encode(), count, None, 0).decode()


class Timing(pt.Pop3TestCase):
    """An account with a costlier hash must not be told apart from an
    unknown name, by the time of the answer or by its work."""

    SLOW = "slowpoke"

    def setUp(self):
        super().setUp()
        # costly enough to measure on a fast machine too: the cost
        # doubles at each step, from where a slow machine is at 0.2 s
        for cost in range(7, 10):
            t = time.process_time()
            self.slow_hash = crypt.crypt("right-password",
                                         gensalt("$y$", cost))
            self.slow_cost = time.process_time() - t
            if self.slow_cost > 0.15:
                break
        self.passwd = os.path.join(self.env.new_dir("auth"), "passwd")
        with open(pt.Env.get().passwd) as f:
            lines = f.read()
        home = self.env.home("alice")
        with open(self.passwd, "w") as f:
            f.write(lines + "%s:%s:%d:%d::%s:/bin/sh\n" % (
                self.SLOW, self.slow_hash, pt.uid_of("alice"), pt.USERS["alice"][2], home))
        os.chmod(self.passwd, 0o600)
        self.server(["-P", "-a", self.passwd, "-t", "30", "-m",
                     os.path.join(self.spool, "%u")])

    def monitor_pid(self):
        pids = [p for p in self.srv.pids() if pt.proc_comm(p) == "pop3d: monitor"]
        self.assertEqual(len(pids), 1)
        return pids[0]

    def attempt(self, user):
        """Wall time and monitor CPU of one failed login."""
        c = self.connect()
        c.cmd("USER " + user)
        mon = self.monitor_pid()
        cpu = pt.proc_cpu(mon)
        t = time.monotonic()
        r = c.cmd("PASS wrong-password")
        wall = time.monotonic() - t
        cpu = pt.proc_cpu(mon) - cpu
        self.assertReply(r, "-ERR [AUTH]")
        c.close()
        return wall, cpu

    def test_failures_answered_at_one_deadline(self):
        slow, unknown = [], []
        for _ in range(5):
            slow.append(self.attempt(self.SLOW)[0])
            unknown.append(self.attempt("nosuchuser")[0])
        slow.sort()
        unknown.sort()
        # the hash costs a few hundred ms; the deadline hides it
        self.assertGreater(self.slow_cost, 0.1)
        self.assertLess(abs(slow[2] - unknown[2]), self.slow_cost / 2,
                        "slow %r unknown %r" % (slow, unknown))

    def test_unknown_user_costs_the_costliest_hash(self):
        cpu = self.attempt("nosuchuser")[1]
        self.assertGreater(cpu, self.slow_cost / 3,
                           "an unknown user cost %.3f s of CPU, the costliest hash %.3f s"
                           % (cpu, self.slow_cost))


class Accounts(pt.Pop3TestCase):
    """System accounts (no -a) that must not log in, and one that may."""

    USERS = {"p3dokay": [], "p3dexpired": [],
             "p3dgidzero": ["-g", "0"]}

    def setUp(self):
        super().setUp()
        for name, extra in self.USERS.items():
            subprocess.run(["userdel", "-r", name], capture_output=True)
            subprocess.run(["useradd", "-M", "-d", "/nonexistent", "-s", "/usr/sbin/nologin"]
                           + extra + [name], check=True, capture_output=True)
            subprocess.run(["chpasswd"], input=("%s:pw-%s\n" % (name, name)).encode(),
                           check=True)
        # the password changed 100 days ago, no inactivity period
        subprocess.run(["chage", "-d", time.strftime("%Y-%m-%d",
                        time.gmtime(time.time() - 100 * 86400)), "-M", "30", "-I", "-1",
                        "p3dexpired"], check=True)
        self.server(["-P", "-t", "30", "-m", os.path.join(self.spool, "%u")])

    def tearDown(self):
        super().tearDown()
        for name in self.USERS:
            subprocess.run(["userdel", name], capture_output=True)

    def try_login(self, name):
        c = self.connect()
        c.cmd("USER " + name)
        r = c.cmd("PASS pw-" + name)
        c.close()
        self.assertTrue(self.srv.wait_idle(10))
        return r

    def test_refused(self):
        self.assertReply(self.try_login("p3dokay"), "+OK")
        self.assertReply(self.try_login("p3dexpired"), "-ERR [AUTH]")
        self.assertReply(self.try_login("p3dgidzero"), "-ERR [AUTH]")


if __name__ == "__main__":
    unittest.main()
