"""Privilege separation as seen from /proc, logging, IPv6, the passwd file."""

import os
import re
import shutil
import subprocess

from pop3test import (Pop3TestCase, POP3D, plain_mbox, password, uid_of,
                      proc_status, proc_comm, sha512_hash, USERS, VERSION)


def ids(status, key):
    return [int(x) for x in status[key].split()]


class Processes(Pop3TestCase):

    def tree(self):
        """{comm: [pid]} of the pop3d processes of the test's server."""
        out = {}
        for pid in self.srv.pids():
            try:
                out.setdefault(proc_comm(pid), []).append(pid)
            except FileNotFoundError:
                pass
        return out

    def test_process_structure_logged_in(self):
        self.put_mbox(plain_mbox(2))
        c = self.login()
        self.assertEqual(c.cmd("NOOP"), "+OK")
        tree = self.tree()
        self.assertEqual(sorted(tree), ["pop3d: maildrop", "pop3d: monitor", "pop3d: session"],
                         "process names: %r" % tree)
        for comm, pids in tree.items():
            self.assertEqual(len(pids), 1, "%s: %r" % (comm, pids))
        monitor = tree["pop3d: monitor"][0]
        session = tree["pop3d: session"][0]
        maildrop = tree["pop3d: maildrop"][0]
        st = {p: proc_status(p) for p in (monitor, session, maildrop)}
        # the monitor is the process systemd-socket-activate started
        self.assertEqual(int(st[monitor]["PPid"]), self.srv.proc.pid)
        self.assertEqual(int(st[session]["PPid"]), monitor)
        self.assertEqual(int(st[maildrop]["PPid"]), monitor)
        # only the monitor is root
        self.assertEqual(ids(st[monitor], "Uid"), [0, 0, 0, 0])
        env = self.env
        self.assertEqual(ids(st[session], "Uid"), [env.session_uid] * 4)
        self.assertEqual(ids(st[session], "Gid"), [env.session_gid] * 4)
        self.assertTrue(set(ids(st[session], "Groups")) <= {env.session_gid},
                        "session groups: %s" % st[session]["Groups"])
        self.assertEqual(os.readlink("/proc/%d/root" % session), env.session_home)
        a_uid, a_gid = USERS["alice"][1], USERS["alice"][2]
        self.assertEqual(ids(st[maildrop], "Uid"), [a_uid] * 4)
        self.assertEqual(ids(st[maildrop], "Gid"), [a_gid] * 4)
        self.assertEqual(st[maildrop]["Groups"], "", "maildrop has supplementary groups")
        self.quit(c)

    def test_session_sandboxed(self):
        # DESIGN.md: the session process runs under seccomp on Linux
        self.put_mbox(plain_mbox(1))
        c = self.login()
        session = self.tree()["pop3d: session"][0]
        st = proc_status(session)
        self.assertEqual(st.get("NoNewPrivs"), "1")
        self.assertEqual(st.get("Seccomp"), "2", "session not in seccomp filter mode")
        self.quit(c)

    def test_processes_before_login(self):
        c = self.connect()
        self.assertEqual(c.cmd("USER alice"), "+OK send PASS")
        tree = self.tree()
        self.assertNotIn("pop3d: maildrop", tree, "maildrop process before login")
        self.assertIn("pop3d: session", tree)
        session = tree["pop3d: session"][0]
        st = proc_status(session)
        self.assertEqual(ids(st, "Uid"), [self.env.session_uid] * 4)
        self.assertEqual(os.readlink("/proc/%d/root" % session), self.env.session_home)
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")

    def test_all_processes_exit_after_session(self):
        self.put_mbox(plain_mbox(1))
        c = self.login()
        pids = self.srv.pids()
        self.assertEqual(len(pids), 3)
        monitor = [p for p in pids if int(proc_status(p)["PPid"]) == self.srv.proc.pid]
        self.assertEqual(len(monitor), 1)
        self.quit(c)
        self.assertEqual(self.srv.pids(), [])
        self.assertRegex(self.srv.log(), r"Child %d died with code 0" % monitor[0])


class Logging(Pop3TestCase):

    def pop3d_lines(self):
        return [l for l in self.srv.log().splitlines() if l.startswith("pop3d")]

    def test_login_and_logout_lines(self):
        msgs = self.put_mbox(plain_mbox(3))
        c = self.login()
        c.cmd("RETR 2")
        c.read_until_dot()
        c.cmd("DELE 1")
        self.quit(c)
        log = self.srv.log()
        self.assertRegex(log, r"(?m)^pop3d\[\d+\]: \[monitor\] login user=alice tls=no from=127\.0\.0\.1$")
        self.assertRegex(log, r"(?m)^pop3d\[\d+\]: \[session\] logout user=alice "
                              r"retrieved=1 octets=%d deleted=1 left=2 tls=no "
                              r"from=127\.0\.0\.1$" % msgs[1].size)
        self.assertNotIn(password("alice"), log)
        for line in self.pop3d_lines():
            self.assertRegex(line, r"^pop3d\[\d+\]: \[(monitor|session|maildrop)\] ")

    def test_failed_login_lines(self):
        c = self.connect()
        c.cmd("USER alice")
        c.cmd("PASS secret-typo-1")
        c.cmd("USER mallory-typed-password")
        c.cmd("PASS secret-typo-2")
        c.cmd("QUIT")
        c.close()
        self.assertTrue(self.srv.wait_idle())
        log = self.srv.log()
        self.assertRegex(log, r"(?m)^pop3d\[\d+\]: \[monitor\] login failed user=alice "
                              r"reason=bad-credentials from=127\.0\.0\.1$")
        self.assertRegex(log, r"(?m)^pop3d\[\d+\]: \[monitor\] login failed "
                              r"reason=unknown-user from=127\.0\.0\.1$")
        self.assertNotIn("secret-typo", log)
        self.assertNotIn("mallory", log)

    def test_ipv6_peer(self):
        msgs = self.put_mbox(plain_mbox(1))
        self.server(host="::1")
        c = self.login()
        self.assertLogin(c.login_reply, msgs)
        self.quit(c)
        self.assertRegex(self.srv.log(), r"(?m)\[monitor\] login user=alice tls=no from=::1$")


class PasswdFile(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.passwd = os.path.join(self.spool, "passwd")
        shutil.copy(self.env.passwd, self.passwd)
        os.chmod(self.passwd, 0o600)
        self.put_mbox(plain_mbox(1))
        self.server(["-P", "-a", self.passwd, "-m", os.path.join(self.spool, "%u")])

    def test_reread_at_each_login(self):
        c = self.login()
        self.quit(c)
        with open(self.passwd) as f:
            text = f.read()
        text = text.replace(self.env.hashes["alice"], sha512_hash("a-new-password"))
        with open(self.passwd, "w") as f:
            f.write(text)
        c = self.connect()
        c.cmd("USER alice")
        self.assertReply(c.cmd("PASS " + password("alice")), "-ERR [AUTH]")
        c.cmd("USER alice")
        self.assertReply(c.cmd("PASS a-new-password"), "+OK maildrop has 1 message (")
        self.quit(c)

    def test_malformed_lines_skipped(self):
        with open(self.passwd) as f:
            text = f.read()
        bad = ["garbage without colons",
               "eve:%s:notanumber:61020::/tmp:/bin/sh" % sha512_hash("eve-pw"),
               "mallet:%s:61021:61021" % sha512_hash("mallet-pw"),
               ""]
        with open(self.passwd, "w") as f:
            f.write("\n".join(bad) + "\n" + text)
        c = self.login()
        self.quit(c)
        for name in ("eve", "mallet"):
            c = self.connect()
            c.cmd("USER " + name)
            self.assertReply(c.cmd("PASS %s-pw" % name), "-ERR [AUTH]")
            c.cmd("QUIT")
            c.close()
        self.assertTrue(self.srv.wait_idle())
        log = self.srv.log()
        self.assertRegex(log, r"(?m)^pop3d\[\d+\]: \[monitor\] .*(passwd|line)",
                         "no log message about the malformed lines")


class ConfigTest(Pop3TestCase):

    def configtest(self, *args):
        """pop3d -n ARGS: (exit status, stdout, stderr lines)."""
        p = subprocess.run([POP3D, "-n"] + list(args), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        return p.returncode, p.stdout.decode(), p.stderr.decode().splitlines()

    def test_n_configuration_ok(self):
        rc, out, err = self.configtest("-P", "-a", self.env.passwd)
        self.assertEqual((rc, out, err), (0, "configuration OK\n", []))

    def test_n_nobody_can_log_in(self):
        # no -P and no certificate: every password is refused
        rc, out, err = self.configtest("-a", self.env.passwd)
        self.assertEqual((rc, out), (1, "configuration has errors\n"))
        self.assertEqual(len(err), 1, err)
        self.assertIn("nobody can log in", err[0])

    def test_n_each_problem_one_line(self):
        rc, out, err = self.configtest("-a", "/nonexistent/passwd", "-u", "no-such-user-x")
        self.assertEqual((rc, out), (1, "configuration has errors\n"))
        self.assertEqual(len(err), 3, err)
        for line in err:
            self.assertRegex(line, r"^pop3d\[\d+\]: \[monitor\] \S")
        self.assertTrue(any("nobody can log in" in l for l in err), err)
        self.assertTrue(any("no-such-user-x" in l for l in err), err)
        self.assertTrue(any("/nonexistent/passwd" in l for l in err), err)

    def test_V_version(self):
        p = subprocess.run([POP3D, "-V"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=10)
        self.assertEqual((p.returncode, p.stdout.decode(), p.stderr),
                         (0, "pop3d %s\n" % VERSION, b""))

    def test_n_bad_session_user(self):
        p = subprocess.run([POP3D, "-n", "-a", self.env.passwd, "-u", "no-such-user-x"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=10)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertNotIn(b"configuration OK", p.stdout)
