"""e2e_maildir: pop3d serving a Maildir (-m template ending in "/").

The real binary through systemd-socket-activate and real clients: the
scan (order, UIDL, duplicates, what is skipped), RETR and TOP byte for
byte, deliveries by procmail and maildrop during a session, a mail
reader renaming files and another program expunging one during a
session, the commit (unlink, seen marking that keeps flags), kill -9 in
the middle of a commit of 1,000 deletions, and poplib, curl, fetchmail
and mpop."""

import hashlib
import os
import poplib
import pwd
import re
import subprocess
import time

from pop3test import (Pop3TestCase, RefMsg, USERS, read_file, password,
                      strip_received, tricky_mbox, plain_mbox, parse_mbox,
                      TOP_DIR, Server)
from e2e_clients import lf_lines

CRASHTEST = os.path.join(TOP_DIR, "pop3d-crashtest")
GONE = "-ERR [SYS/TEMP] message %d vanished or changed since login"


def ref(raw):
    """The reference of a Maildir message: the whole file is served."""
    return RefMsg(0, b"", raw, len(raw))


def uidl_of(unique):
    """The UIDL rule of the manual: the unique part, or a hash of it."""
    u = unique.encode() if isinstance(unique, str) else unique
    if 0 < len(u) <= 70 and all(0x21 <= c <= 0x7e for c in u):
        return u.decode()
    return "sha256:" + hashlib.sha256(u).hexdigest()[:32]


def tricky_messages():
    """The raw messages of the mbox corpus, each to be one file."""
    return [m.raw for m in parse_mbox(tricky_mbox())]


class MaildirCase(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.md = self.make_maildir("alice")
        self.seq = 0

    def make_maildir(self, user):
        md = os.path.join(self.spool, user)
        uid, gid = USERS[user][1], USERS[user][2]
        for d in ("", "new", "cur", "tmp"):
            p = os.path.join(md, d)
            os.makedirs(p, exist_ok=True)
            os.chmod(p, 0o700)
            os.chown(p, uid, gid)
        return md

    def default_args(self, cleartext=True, timeout=30, maildrop=None):
        return super().default_args(cleartext, timeout,
                                    maildrop or os.path.join(self.spool, "%u") + "/")

    def put(self, data, sub="new", name=None, user="alice", mode=0o600, owner=None):
        """Writes a message file into user's Maildir as a delivery agent
        would (tmp/, then a rename), owned by owner (default user);
        returns its name."""
        owner = owner or user
        if name is None:
            self.seq += 1
            name = "%d.M%dP%d.host" % (1700000000 + self.seq, self.seq, os.getpid())
        md = os.path.join(self.spool, user)
        tmp = os.path.join(md, "tmp", name.replace("/", "_"))
        with open(tmp, "wb") as f:
            f.write(data)
        os.chown(tmp, USERS[owner][1], USERS[owner][2])
        os.chmod(tmp, mode)
        os.rename(tmp, os.path.join(md, sub, name))
        return name

    def listing(self, sub):
        return sorted(os.listdir(os.path.join(self.md, sub)))

    def uidls(self, c):
        st, lines = c.multi("UIDL")
        self.assertReply(st, "+OK")
        return [l.split(" ", 1)[1] for l in lines]

    def retr(self, c, n):
        r = c.cmd("RETR %d" % n)
        if not r.startswith("+OK"):
            return r, None
        return r, c.read_until_dot()


class Serve(MaildirCase):

    def test_retr_top_list_byte_for_byte(self):
        raws = tricky_messages() + [b""]
        for raw in raws:
            self.put(raw)
        msgs = [ref(r) for r in raws]
        c = self.login()
        self.assertLogin(c.login_reply, msgs)
        st, lines = c.multi("LIST")
        self.assertEqual(lines, ["%d %d" % (i + 1, m.size) for i, m in enumerate(msgs)])
        for i, m in enumerate(msgs):
            r, body = self.retr(c, i + 1)
            self.assertEqual(r, "+OK %d octets" % m.size)
            self.assertEqual(body, m.wire, "message %d" % (i + 1))
            self.assertReply(c.cmd("TOP %d 1" % (i + 1)), "+OK")
            self.assertEqual(c.read_until_dot(), m.top(1), "TOP %d 1" % (i + 1))
        self.quit(c)

    def test_order_uidl_and_odd_names(self):
        # delivery order is the time in the name, whatever the directory
        names = [("cur", "1700000300.b.host:2,S"), ("new", "1700000100.a.host"),
                 ("new", "99.early"), ("cur", "1700000200.c.host,S=5,W=6:2,"),
                 ("new", "x" * 80), ("new", "tab\there"), ("new", "noinfo")]
        for i, (sub, name) in enumerate(names):
            self.put(b"Subject: %d\n\nbody\n" % i, sub, name)
        order = ["noinfo", "tab\there", "x" * 80, "99.early", "1700000100.a.host",
                 "1700000200.c.host,S=5,W=6", "1700000300.b.host"]
        c = self.login()
        got = self.uidls(c)
        self.assertEqual(got, [uidl_of(u) for u in order])
        for u in got:
            self.assertTrue(0 < len(u) <= 70 and all(0x21 <= ord(ch) <= 0x7e for ch in u), u)
        self.quit(c)

    def test_skipped_files_and_folders(self):
        keep = self.put(b"Subject: served\n\nyes\n")
        self.put(b"hidden\n", "new", ".hidden")
        self.put(b"in tmp\n", "tmp", "1700000001.tmp.host")
        os.symlink("/etc/passwd", os.path.join(self.md, "cur", "1700000002.link:2,S"))
        os.mkfifo(os.path.join(self.md, "new", "1700000003.fifo"))
        self.put(b"not hers\n", "new", "1700000004.bob.host", owner="bob")
        sent = os.path.join(self.md, ".Sent")
        os.makedirs(os.path.join(sent, "cur"))
        os.chown(sent, USERS["alice"][1], USERS["alice"][2])
        with open(os.path.join(sent, "cur", "1700000005.sent:2,S"), "wb") as f:
            f.write(b"sent mail\n")
        before = {d: self.listing(d) for d in ("new", "cur", "tmp")}
        c = self.login()
        self.assertEqual(self.uidls(c), [keep])
        self.assertEqual(self.retr(c, 1)[1], ref(b"Subject: served\n\nyes\n").wire)
        c.cmd("DELE 1")
        self.quit(c)
        before["new"].remove(keep)
        self.assertEqual({d: self.listing(d) for d in ("new", "cur", "tmp")}, before)
        self.assertEqual(os.listdir(os.path.join(sent, "cur")), ["1700000005.sent:2,S"])
        log = self.srv.log()
        self.assertRegex(log, r"maildir file skipped file=\S*1700000003\.fifo ")
        self.assertRegex(log, r"maildir file skipped file=\S*1700000004\.bob\.host ")

    def test_duplicates(self):
        # the one in cur/ is served, the other logged and left alone; it
        # comes back under the same UIDL once the served one is deleted
        self.put(b"Subject: in new\n\nnew\n", "new", "1700000001.dup.host")
        self.put(b"Subject: in cur\n\ncur\n", "cur", "1700000001.dup.host:2,S")
        self.put(b"Subject: b1\n\nb\n", "cur", "1700000002.two.host:2,F")
        self.put(b"Subject: b2\n\nb\n", "cur", "1700000002.two.host:2,FS")
        c = self.login()
        self.assertEqual(self.uidls(c), ["1700000001.dup.host", "1700000002.two.host"])
        self.assertEqual(self.retr(c, 1)[1], ref(b"Subject: in cur\n\ncur\n").wire)
        self.assertEqual(self.retr(c, 2)[1], ref(b"Subject: b1\n\nb\n").wire)
        c.cmd("DELE 1")
        self.quit(c)
        self.assertRegex(self.srv.log(), r"maildir twin left alone file=\S*new/1700000001\.dup"
                         r"\.host served=cur/1700000001\.dup\.host:2,S ")
        c = self.login()
        self.assertEqual(self.uidls(c), ["1700000001.dup.host", "1700000002.two.host"])
        self.assertEqual(self.retr(c, 1)[1], ref(b"Subject: in new\n\nnew\n").wire)
        self.quit(c)

    def test_missing_maildir_is_empty(self):
        c = self.login("bob")
        self.assertEqual(c.login_reply, "+OK maildrop has 0 messages (0 octets)")
        self.quit(c)

    def test_symlinked_maildir_refused(self):
        os.symlink(self.md, os.path.join(self.spool, "carol"))
        c = self.connect()
        c.cmd("USER carol")
        self.assertEqual(c.cmd("PASS " + password("carol")),
                         "-ERR [SYS/PERM] maildrop is a symbolic link")

    def test_second_session_in_use(self):
        self.put(b"Subject: one\n\n1\n")
        c1 = self.login()
        c2 = self.connect(concurrent=True)
        c2.cmd("USER alice")
        self.assertReply(c2.cmd("PASS " + password("alice")), "-ERR [IN-USE]")
        self.assertReply(c2.cmd("QUIT"), "+OK")
        c2.close()
        self.quit(c1)

    def test_configtest_says_maildir(self):
        p = subprocess.run([self.srv.args[0], "-n", "-a", self.env.passwd, "-m", "%h/Maildir/"],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.assertIn(b"-m %h/Maildir/: a Maildir", p.stdout)


class Concurrency(MaildirCase):

    def as_alice(self, argv, data):
        uid, gid = USERS["alice"][1], USERS["alice"][2]
        p = subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % gid,
                            "--clear-groups", "env", "-i", "HOME=" + self.env.home("alice"),
                            "PATH=/usr/bin:/bin"] + argv, input=data,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        self.assertEqual(p.returncode, 0, p.stderr)

    def deliver_procmail(self, data):
        rc = os.path.join(self.spool, "procmailrc")
        with open(rc, "w") as f:
            f.write(":0\n%s/\n" % self.md)
        self.as_alice(["procmail", "-m", rc], data)

    def deliver_maildrop(self, data):
        # maildrop wants its user in the passwd database
        uid = USERS["alice"][1]
        try:
            pwd.getpwuid(uid)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir",
                            "/nonexistent", "--shell", "/usr/sbin/nologin", "--uid",
                            str(uid), "--no-user-group", "--gid", "nogroup",
                            "pop3d-e2e-alice"], check=True)
        rc = os.path.join(self.spool, "mailfilter")
        with open(rc, "w") as f:
            f.write('to "%s/"\n' % self.md)
        os.chown(rc, uid, USERS["alice"][2])
        os.chmod(rc, 0o600)
        self.as_alice(["maildrop", rc], data)

    def test_deliveries_appear_at_next_login(self):
        first = b"Subject: first\n\nbefore the session\n"
        self.deliver_procmail(first)
        c = self.login()
        self.assertEqual(c.login_reply, "+OK maildrop has 1 message (%d octets)" % ref(first).size)
        by_procmail = b"Subject: by procmail\n\n.dot line\nbody\n"
        by_maildrop = b"Subject: by maildrop\n\nanother body\n"
        self.deliver_procmail(by_procmail)
        self.deliver_maildrop(by_maildrop)
        self.assertEqual(len(self.listing("new")), 3)
        self.assertReply(c.cmd("STAT"), "+OK 1 %d" % ref(first).size)
        self.assertEqual(c.cmd("RETR 2"), "-ERR no such message")
        self.assertEqual(self.retr(c, 1)[1], ref(first).wire)
        self.quit(c)
        c = self.login()
        st, lines = c.multi("LIST")
        self.assertEqual(len(lines), 3)
        got = [self.retr(c, i)[1] for i in (1, 2, 3)]
        # procmail and maildrop add a From_ line or headers of their own:
        # each delivered file is served exactly as it is on disk
        files = {}
        for sub in ("new", "cur"):
            for n in self.listing(sub):
                files[n.split(":")[0]] = read_file(os.path.join(self.md, sub, n))
        uidls = self.uidls(c)
        for u, g in zip(uidls, got):
            self.assertEqual(g, ref(files[u]).wire)
        self.assertTrue(any(b"by procmail" in g for g in got))
        self.assertTrue(any(b"by maildrop" in g for g in got))
        self.quit(c)

    def test_reader_renames_during_session(self):
        names = [self.put(b"Subject: %d\n\nbody %d\n" % (i, i)) for i in range(4)]
        c = self.login()
        before = self.uidls(c)
        # a mail reader moves two to cur/ with flags and flags one again
        os.rename(os.path.join(self.md, "new", names[0]),
                  os.path.join(self.md, "cur", names[0] + ":2,F"))
        os.rename(os.path.join(self.md, "new", names[2]),
                  os.path.join(self.md, "cur", names[2] + ":2,R"))
        os.rename(os.path.join(self.md, "cur", names[2] + ":2,R"),
                  os.path.join(self.md, "cur", names[2] + ":2,RT"))
        for i in range(4):
            self.assertEqual(self.retr(c, i + 1)[1],
                             ref(b"Subject: %d\n\nbody %d\n" % (i, i)).wire, "message %d" % (i + 1))
        self.assertEqual(self.uidls(c), before)
        c.cmd("DELE 3")
        self.quit(c)
        # deleted where it went; the others seen, their flags kept
        self.assertEqual(self.listing("new"), [])
        self.assertEqual(self.listing("cur"), sorted([names[0] + ":2,FS", names[1] + ":2,S",
                                                      names[3] + ":2,S"]))
        c = self.login()
        self.assertEqual(self.uidls(c), [before[0], before[1], before[3]])
        self.quit(c)

    def test_uidl_unchanged_across_move(self):
        for i in range(3):
            self.put(b"Subject: %d\n\nx\n" % i)
        c = self.login()
        first = self.uidls(c)
        self.quit(c)
        for n in self.listing("new"):
            os.rename(os.path.join(self.md, "new", n), os.path.join(self.md, "cur", n + ":2,S"))
        c = self.login()
        self.assertEqual(self.uidls(c), first)
        self.quit(c)

    def test_expunge_by_another_program(self):
        names = [self.put(b"Subject: %d\n\nbody\n" % i) for i in range(3)]
        c = self.login()
        os.unlink(os.path.join(self.md, "new", names[1]))
        self.assertEqual(c.cmd("RETR 2"), GONE % 2)
        self.assertEqual(c.cmd("TOP 2 0"), GONE % 2)
        self.assertEqual(c.cmd("NOOP"), "+OK")
        self.assertEqual(self.retr(c, 3)[1], ref(b"Subject: 2\n\nbody\n").wire)
        # a file rewritten in place (other size) is not the one scanned
        p = os.path.join(self.md, "new", names[0])
        with open(p, "ab") as f:
            f.write(b"more\n")
        self.assertEqual(c.cmd("RETR 1"), GONE % 1)
        c.cmd("DELE 2")
        self.quit(c)
        self.assertEqual(len(self.listing("new")), 1)
        self.assertEqual(self.listing("cur"), [names[2] + ":2,S"])

    def test_seen_marking_keeps_flags(self):
        a = self.put(b"a\n", "new", "1700000001.a.host")
        b = self.put(b"b\n", "new", "1700000002.b.host:2,F")
        c_ = self.put(b"c\n", "cur", "1700000003.c.host:2,FRT")
        d = self.put(b"d\n", "cur", "1700000004.d.host:2,RS")
        e = self.put(b"e\n", "new", "1700000005.e.host")      # only TOP
        f = self.put(b"f\n", "cur", "1700000006.f.host:2,ab")  # user keywords
        g = self.put(b"g\n", "new", "1700000007.g.host")      # not touched
        c = self.login()
        for n in (1, 2, 3, 4, 6):
            self.assertReply(self.retr(c, n)[0], "+OK")
        c.cmd("TOP 5 0")
        c.read_until_dot()
        self.quit(c)
        self.assertEqual(self.listing("new"), [e, g])
        self.assertEqual(self.listing("cur"), sorted([
            "1700000001.a.host:2,S", "1700000002.b.host:2,FS", "1700000003.c.host:2,FRST",
            d, "1700000006.f.host:2,Sab"]))

    def test_no_quit_changes_nothing(self):
        self.put(b"a\n")
        before = self.listing("new")
        c = self.login()
        self.retr(c, 1)
        c.cmd("DELE 1")
        self.finish(c)
        self.assertEqual(self.listing("new"), before)
        self.assertEqual(self.listing("cur"), [])


class Crash(MaildirCase):

    def test_kill_during_commit_of_1000_deletions(self):
        bodies = {}
        for i in range(1000):
            raw = b"Subject: %d\n\n" % i + (b"line of message %d\n" % i) * (1 + i % 7)
            name = self.put(raw, "new" if i % 2 else "cur",
                            "%d.M%d.host%s" % (1700000000 + i, i, "" if i % 2 else ":2,S"))
            bodies[name.split(":")[0]] = raw
        srv = Server(self.default_args(), self.logdir, binary=CRASHTEST,
                     env={"POP3D_CRASH_AT": "500"})
        self.servers.append(srv)
        self._srv = srv
        c = self.login()
        c.send("".join("DELE %d\r\n" % (i + 1) for i in range(1000)))
        for i in range(1000):
            self.assertReply(c.readline().decode(), "+OK message %d deleted" % (i + 1))
        r = c.cmd("QUIT")
        self.assertReply(r, "-ERR [SYS/TEMP]")
        c.close()
        self.assertTrue(srv.wait_idle())
        self.assertIn("crash point 500: unlink", srv.log())
        left = {}
        for sub in ("new", "cur"):
            for n in self.listing(sub):
                left[n.split(":")[0]] = read_file(os.path.join(self.md, sub, n))
        self.assertEqual(len(left), 501)
        for u, raw in left.items():
            self.assertEqual(raw, bodies[u], u)
        c = self.login()
        self.assertEqual(c.login_reply, "+OK maildrop has 501 messages (%d octets)"
                         % sum(ref(r).size for r in left.values()))
        self.quit(c)


class Clients(MaildirCase):

    def setUp(self):
        super().setUp()
        self.raws = tricky_messages()
        for raw in self.raws:
            self.put(raw)
        self.msgs = [ref(r) for r in self.raws]

    def put_plain(self):
        """Replaces the messages with plain ones: fetchmail and mpop
        normalise line ends and final newlines of the tricky ones."""
        for sub in ("new", "cur"):
            for n in self.listing(sub):
                os.unlink(os.path.join(self.md, sub, n))
        self.raws = [m.raw for m in parse_mbox(plain_mbox(4))] + [b"Subject: dots\n\n.one\n..two\n.\nend\n"]
        for raw in self.raws:
            self.put(raw)
        self.msgs = [ref(r) for r in self.raws]

    def test_poplib(self):
        self.assertTrue(self.srv.wait_idle())
        p = poplib.POP3(self.srv.host, self.srv.port, timeout=15)
        p.user("alice")
        p.pass_(password("alice"))
        self.assertEqual(p.stat(), (len(self.msgs), sum(m.size for m in self.msgs)))
        for i, m in enumerate(self.msgs):
            resp, lines, _ = p.retr(i + 1)
            self.assertEqual(lines, m.crlf.split(b"\r\n")[:-1], "message %d" % (i + 1))
        p.dele(1)
        self.assertEqual(p.quit(), b"+OK pop3d signing off (%d messages left)"
                         % (len(self.msgs) - 1))
        self.assertTrue(self.srv.wait_idle())
        self.assertEqual(len(self.listing("cur")), len(self.msgs) - 1)

    def test_curl(self):
        self.assertTrue(self.srv.wait_idle())
        for i, m in enumerate(self.msgs):
            url = "pop3://alice:%s@127.0.0.1:%d/%d" % (password("alice"), self.srv.port, i + 1)
            p = subprocess.run(["curl", "-s", "-S", "--max-time", "30", url],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, m.crlf, "message %d" % (i + 1))
            self.assertTrue(self.srv.wait_idle())

    def test_fetchmail(self):
        self.put_plain()
        work = self.env.new_dir("fetchmail", 0o700)
        out = os.path.join(work, "out")
        os.mkdir(out)
        mda = os.path.join(work, "mda.sh")
        with open(mda, "w") as f:
            f.write('#!/bin/sh\nn=$(ls "%s" | wc -l)\nexec cat > "%s/$(printf %%04d $n)"\n'
                    % (out, out))
        os.chmod(mda, 0o755)
        rc = os.path.join(work, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('set no bouncemail\n'
                    'poll 127.0.0.1 with proto POP3 port %d and options no dns\n'
                    '  user "alice" there with password "%s" is "root" here\n'
                    '  options fetchall no rewrite no keep sslproto \'\'\n'
                    '  mda "%s"\n' % (self.srv.port, password("alice"), mda))
        os.chmod(rc, 0o600)
        p = subprocess.run(["fetchmail", "--nosyslog", "-f", rc, "--idfile",
                            os.path.join(work, "ids")], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120,
                           env=dict(os.environ, HOME=work, FETCHMAILHOME=work))
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertTrue(self.srv.wait_idle())
        got = [read_file(os.path.join(out, n)) for n in sorted(os.listdir(out))]
        self.assertEqual([strip_received(g) for g in got], [lf_lines(m) for m in self.msgs])
        self.assertEqual(self.listing("new") + self.listing("cur"), [])

    def test_mpop(self):
        self.put_plain()
        work = self.env.new_dir("mpop", 0o700)
        dest = os.path.join(work, "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(dest, d))
        conf = os.path.join(work, "mpoprc")
        with open(conf, "w") as f:
            f.write("account test\nhost 127.0.0.1\nport %d\ntls off\nauth user\n"
                    "user alice\npassword %s\ndelivery maildir %s\nkeep on\n"
                    "uidls_file %s\ntimeout 30\n"
                    % (self.srv.port, password("alice"), dest, os.path.join(work, "uidls")))
        os.chmod(conf, 0o600)
        for run in (1, 2):
            p = subprocess.run(["mpop", "-C", conf, "test"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=120,
                               env=dict(os.environ, HOME=work))
            self.assertEqual(p.returncode, 0, p.stdout)
            self.assertTrue(self.srv.wait_idle())
            got = sorted(strip_received(read_file(os.path.join(dest, "new", n)))
                         for n in os.listdir(os.path.join(dest, "new")))
            # the second run finds nothing new: the UIDLs held
            self.assertEqual(got, sorted(lf_lines(m) for m in self.msgs), "run %d" % run)
        # kept, and marked seen as retrieved
        self.assertEqual(self.listing("new"), [])
        self.assertEqual(len(self.listing("cur")), len(self.msgs))
        self.assertTrue(all(n.endswith(":2,S") for n in self.listing("cur")))


class Sandbox(MaildirCase):
    """The maildrop process of a Maildir under its own Landlock rule and
    seccomp filter (the test build's probes)."""

    def crash_server(self, env):
        srv = Server(self.default_args(), self.logdir, binary=CRASHTEST, env=env)
        self.servers.append(srv)
        self._srv = srv
        return srv

    def test_landlock_keeps_maildrop_in_maildir(self):
        inside = os.path.join(self.md, "new", self.put(b"Subject: in\n\nx\n"))
        # alice may read these, but they are outside her Maildir
        outside = os.path.join(self.env.home("alice"), "secret")
        with open(outside, "wb") as f:
            f.write(b"not mail\n")
        os.chown(outside, USERS["alice"][1], USERS["alice"][2])
        sibling = os.path.join(self.spool, "alice-other")
        with open(sibling, "wb") as f:
            f.write(b"not mail\n")
        os.chown(sibling, USERS["alice"][1], USERS["alice"][2])
        self.crash_server({"POP3D_TEST_OPEN_PROBE": ":".join([inside, outside, sibling])})
        c = self.login()
        self.assertEqual(self.retr(c, 1)[1], ref(b"Subject: in\n\nx\n").wire)
        self.quit(c)
        log = self.srv.log()
        self.assertIn("test build: open %s: opened" % inside, log)
        self.assertIn("test build: open %s: Permission denied" % outside, log)
        self.assertIn("test build: open %s: Permission denied" % sibling, log)
        # and the seen marking, a move from new/ to cur/, was allowed
        self.assertEqual(self.listing("cur"), [os.path.basename(inside) + ":2,S"])

    def test_seccomp_kills_maildir_maildrop(self):
        self.put(b"Subject: in\n\nx\n")
        self.crash_server({"POP3D_TEST_SANDBOX_ESCAPE": "maildrop:mmap-exec"})
        c = self.connect()
        c.cmd("USER alice")
        self.assertReply(c.cmd("PASS " + password("alice")),
                         "-ERR [SYS/TEMP] maildrop unavailable")
        c.close()
        self.assertTrue(self.srv.wait_idle())
        log = self.srv.log()
        self.assertIn("[maildrop] test build: trying mmap-exec", log)
        self.assertIn("maildrop process killed signal=31", log)
