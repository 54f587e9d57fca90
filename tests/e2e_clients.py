"""Real POP3 clients against pop3d: Python's poplib, curl, fetchmail, mpop.
Every fetched message is compared byte for byte with the reference."""

import os
import poplib
import re
import subprocess

from pop3test import (Pop3TestCase, parse_mbox, plain_mbox, tricky_mbox,
                      read_file, password, uid_of, split_lines,
                      strip_received, VERSION)


def lf_lines(m):
    """The message as a client that stores LF line ends writes it."""
    return m.crlf.replace(b"\r\n", b"\n")


class Poplib(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.data = tricky_mbox()
        self.msgs = self.put_mbox(self.data)

    def client(self):
        self.assertTrue(self.srv.wait_idle())
        p = poplib.POP3(self.srv.host, self.srv.port, timeout=15)
        self.assertTrue(p.getwelcome().startswith(b"+OK pop3d ready"))
        p.user("alice")
        p.pass_(password("alice"))
        return p

    def test_retr_all(self):
        p = self.client()
        count, size = p.stat()
        self.assertEqual((count, size), (len(self.msgs), sum(m.size for m in self.msgs)))
        resp, listing, _ = p.list()
        self.assertEqual(listing, [b"%d %d" % (i + 1, m.size) for i, m in enumerate(self.msgs)])
        for i, m in enumerate(self.msgs):
            resp, lines, octets = p.retr(i + 1)
            self.assertEqual(resp, b"+OK %d octets" % m.size)
            self.assertEqual(lines, m.crlf.split(b"\r\n")[:-1], "message %d" % (i + 1))
        self.assertEqual(p.quit(), b"+OK pop3d signing off (12 messages left)")
        self.assertEqual(read_file(self.mbox_path()), self.data)

    def test_top_and_uidl(self):
        p = self.client()
        for i, m in enumerate(self.msgs):
            resp, lines, _ = p.top(i + 1, 1)
            self.assertEqual(lines, m.top_unstuffed(1).split(b"\r\n")[:-1], "TOP %d 1" % (i + 1))
        resp, uidls, _ = p.uidl()
        self.assertEqual(len(uidls), len(self.msgs))
        self.assertEqual(p.uidl(3), b"+OK " + uidls[2])
        p.quit()

    def test_capa(self):
        p = self.client()
        caps = p.capa()
        for cap in ("TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"):
            self.assertIn(cap, caps)
        self.assertEqual(caps.get("IMPLEMENTATION"), ["pop3d-" + VERSION])
        p.quit()

    def test_dele_quit(self):
        p = self.client()
        p.dele(1)
        p.dele(9)
        self.assertEqual(p.quit(), b"+OK pop3d signing off (10 messages left)")
        self.assertTrue(self.srv.wait_idle())
        kept = [(m.from_line, m.raw) for i, m in enumerate(self.msgs) if i + 1 not in (1, 9)]
        self.assertEqual([(m.from_line, m.raw) for m in parse_mbox(read_file(self.mbox_path()))], kept)

    def test_bad_password(self):
        self.assertTrue(self.srv.wait_idle())
        p = poplib.POP3(self.srv.host, self.srv.port, timeout=15)
        p.user("alice")
        with self.assertRaises(poplib.error_proto) as cm:
            p.pass_("nope")
        self.assertTrue(str(cm.exception).startswith("b'-ERR [AUTH]"), str(cm.exception))
        p.quit()


class Curl(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.data = tricky_mbox()
        self.msgs = self.put_mbox(self.data)

    def curl(self, path="", *args, user="alice", check=True):
        self.assertTrue(self.srv.wait_idle())
        url = "pop3://%s:%s@127.0.0.1:%d/%s" % (user, password(user), self.srv.port, path)
        p = subprocess.run(["curl", "-s", "-S", "--max-time", "30"] + list(args) + [url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        if check:
            self.assertEqual(p.returncode, 0, p.stderr)
        return p

    def test_retr_each(self):
        for i, m in enumerate(self.msgs):
            out = self.curl(str(i + 1)).stdout
            self.assertEqual(out, m.crlf, "message %d" % (i + 1))

    def test_list(self):
        out = self.curl().stdout
        self.assertEqual(out, b"".join(b"%d %d\r\n" % (i + 1, m.size) for i, m in enumerate(self.msgs)))

    def test_uidl_and_top(self):
        out = self.curl("", "-X", "UIDL").stdout
        lines = out.split(b"\r\n")[:-1]
        self.assertEqual([l.split()[0] for l in lines], [b"%d" % (i + 1) for i in range(len(self.msgs))])
        self.assertEqual(len(set(l.split()[1] for l in lines)), len(self.msgs))
        out = self.curl("", "-X", "TOP 1 0").stdout
        self.assertEqual(out, self.msgs[0].top_unstuffed(0))

    def test_dele(self):
        self.curl("2", "-X", "DELE", "-I")
        self.assertTrue(self.srv.wait_idle())
        kept = [(m.from_line, m.raw) for i, m in enumerate(self.msgs) if i != 1]
        self.assertEqual([(m.from_line, m.raw) for m in parse_mbox(read_file(self.mbox_path()))], kept)

    def test_bad_login_fails(self):
        self.assertTrue(self.srv.wait_idle())
        url = "pop3://alice:wrong@127.0.0.1:%d/1" % self.srv.port
        p = subprocess.run(["curl", "-s", "--max-time", "30", url],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 67, p.stderr)  # CURLE_LOGIN_DENIED
        self.assertEqual(p.stdout, b"")


class Fetchmail(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.work = self.env.new_dir("fetchmail", 0o700)
        self.out = os.path.join(self.work, "out")
        os.mkdir(self.out)
        self.mda = os.path.join(self.work, "mda.sh")
        with open(self.mda, "w") as f:
            # one file per delivered message, numbered in order of arrival
            f.write('#!/bin/sh\nn=$(ls "%s" | wc -l)\nexec cat > "%s/$(printf %%04d $n)"\n'
                    % (self.out, self.out))
        os.chmod(self.mda, 0o755)

    def fetch(self, keep, user="alice", pw=None):
        self.assertTrue(self.srv.wait_idle())
        rc = os.path.join(self.work, "fetchmailrc")
        with open(rc, "w") as f:
            f.write('set no bouncemail\n'
                    'poll 127.0.0.1 with proto POP3 port %d and options no dns\n'
                    '  user "%s" there with password "%s" is "root" here\n'
                    '  options fetchall no rewrite %s sslproto \'\'\n'
                    '  mda "%s"\n'
                    % (self.srv.port, user, pw or password(user), "keep" if keep else "no keep",
                       self.mda))
        os.chmod(rc, 0o600)
        env = dict(os.environ, HOME=self.work, FETCHMAILHOME=self.work)
        p = subprocess.run(["fetchmail", "--nosyslog", "-f", rc, "--idfile",
                            os.path.join(self.work, "ids")],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                           timeout=120)
        self.assertTrue(self.srv.wait_idle())
        return p

    def delivered(self):
        return [read_file(os.path.join(self.out, n)) for n in sorted(os.listdir(self.out))]

    def check_delivered(self, msgs):
        got = self.delivered()
        self.assertEqual(len(got), len(msgs))
        for i, (g, m) in enumerate(zip(got, msgs)):
            self.assertTrue(g.startswith(b"Received: from 127.0.0.1"), g[:200])
            self.assertEqual(strip_received(g), lf_lines(m), "message %d" % (i + 1))

    def test_fetch_keep(self):
        data = plain_mbox(4)
        msgs = self.put_mbox(data)
        p = self.fetch(keep=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.check_delivered(msgs)
        self.assertEqual(read_file(self.mbox_path()), data)

    def test_fetch_and_delete(self):
        data = plain_mbox(3) + mbox_dots()
        msgs = self.put_mbox(data)
        p = self.fetch(keep=False)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.check_delivered(msgs)
        left = read_file(self.mbox_path()) if os.path.exists(self.mbox_path()) else b""
        self.assertEqual(parse_mbox(left), [])
        # nothing more to fetch: fetchmail exits 1 ("no mail")
        p = self.fetch(keep=False)
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(len(self.delivered()), len(msgs))

    def test_wrong_password(self):
        self.put_mbox(plain_mbox(1))
        p = self.fetch(keep=True, pw="wrong")
        self.assertEqual(p.returncode, 3, p.stdout)  # authentication failed
        self.assertEqual(self.delivered(), [])


def mbox_dots():
    return (b"From dots@example.org Tue Jan  2 10:00:00 2024\n"
            b"Subject: dots for fetchmail\n\n.one\n..two\n.\nend\n\n")


class Mpop(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.work = self.env.new_dir("mpop", 0o700)
        self.maildir = os.path.join(self.work, "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, d))

    def mpop(self, keep, delivery=None, pw=None):
        self.assertTrue(self.srv.wait_idle())
        conf = os.path.join(self.work, "mpoprc")
        with open(conf, "w") as f:
            f.write("account test\nhost 127.0.0.1\nport %d\ntls off\nauth user\n"
                    "user alice\npassword %s\ndelivery %s\nkeep %s\nuidls_file %s\n"
                    "timeout 30\n"
                    % (self.srv.port, pw or password("alice"),
                       delivery or "maildir " + self.maildir,
                       "on" if keep else "off", os.path.join(self.work, "uidls")))
        os.chmod(conf, 0o600)
        p = subprocess.run(["mpop", "-C", conf, "test"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=120,
                           env=dict(os.environ, HOME=self.work))
        self.assertTrue(self.srv.wait_idle())
        return p

    def maildir_messages(self):
        new = os.path.join(self.maildir, "new")
        return [read_file(os.path.join(new, n)) for n in os.listdir(new)]

    def check(self, got, msgs):
        got = sorted(strip_received(g) for g in got)
        want = sorted(lf_lines(m) for m in msgs)
        self.assertEqual(len(got), len(want))
        for g, w in zip(got, want):
            self.assertEqual(g, w)

    def test_keep_then_nothing_new(self):
        data = plain_mbox(4) + mbox_dots()
        msgs = self.put_mbox(data)
        p = self.mpop(keep=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.check(self.maildir_messages(), msgs)
        self.assertEqual(read_file(self.mbox_path()), data)
        # UIDLs are stable: the second run finds nothing new
        p = self.mpop(keep=True)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assertEqual(len(self.maildir_messages()), len(msgs))

    def test_fetch_and_delete_pipelined(self):
        data = plain_mbox(6)
        msgs = self.put_mbox(data)
        p = self.mpop(keep=False)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.check(self.maildir_messages(), msgs)
        left = read_file(self.mbox_path()) if os.path.exists(self.mbox_path()) else b""
        self.assertEqual(parse_mbox(left), [])
        self.assertTrue(self.srv.wait_idle())
        self.assertRegex(self.srv.log(), r"logout user=alice retrieved=6 octets=\d+ deleted=6 left=0 ")

    def test_mbox_delivery(self):
        data = plain_mbox(3)
        msgs = self.put_mbox(data)
        out = os.path.join(self.work, "out.mbox")
        p = self.mpop(keep=True, delivery="mbox " + out)
        self.assertEqual(p.returncode, 0, p.stdout)
        got = parse_mbox(read_file(out))
        self.check([g.raw for g in got], msgs)

    def test_wrong_password(self):
        self.put_mbox(plain_mbox(1))
        p = self.mpop(keep=True, pw="wrong")
        self.assertNotEqual(p.returncode, 0, p.stdout)
        self.assertIn(b"[AUTH]", p.stdout)
        self.assertEqual(self.maildir_messages(), [])
