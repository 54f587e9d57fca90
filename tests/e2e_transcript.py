"""Transcripts without a network (STYLE.md point 15): client lines piped
into pop3d's standard input all at once, the whole output compared line by
line with the expected replies, and the exit status checked."""

import os
import re
import subprocess

from pop3test import (Pop3TestCase, POP3D, plain_mbox, parse_mbox, read_file,
                      password)


class Transcript(Pop3TestCase):

    def run_pop3d(self, client, args=None):
        """Pipes client (lines without line ends, or bytes) into pop3d;
        returns (output lines, exit status, log)."""
        if isinstance(client, list):
            client = "".join(l + "\r\n" for l in client).encode()
        argv = [POP3D, "-d"] + (args or self.default_args())
        p = subprocess.run(argv, input=client, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=30)
        out = p.stdout
        self.assertTrue(out == b"" or out.endswith(b"\r\n"), "output not CRLF-terminated: %r" % out[-50:])
        return out.split(b"\r\n")[:-1], p.returncode, p.stderr.decode("utf-8", "replace")

    def match(self, got, expected):
        """expected: str lines, "re:..." for a regular expression, or bytes
        for an exact multi-line block (CRLF separated, ending with CRLF)."""
        want = []
        for e in expected:
            if isinstance(e, bytes):
                want += [x for x in e.split(b"\r\n")[:-1]]
            else:
                want.append(e)
        self.assertEqual(len(got), len(want),
                         "output has %d lines, expected %d:\n%s" % (
                             len(got), len(want), b"\n".join(got).decode("latin-1")))
        for i, (g, w) in enumerate(zip(got, want)):
            if isinstance(w, bytes):
                self.assertEqual(g, w, "line %d" % (i + 1))
            elif w.startswith("re:"):
                self.assertRegex(g.decode("latin-1"), w[3:], "line %d" % (i + 1))
            else:
                self.assertEqual(g.decode("latin-1"), w, "line %d" % (i + 1))

    def test_authorization_state(self):
        got, rc, _ = self.run_pop3d(["NOOP", "STAT", "XYZZY", "PASS x", "QUIT", "NOOP"])
        self.match(got, ["+OK pop3d ready",
                         "-ERR command not valid in this state",
                         "-ERR command not valid in this state",
                         "-ERR unknown command",
                         "-ERR USER first",
                         "+OK pop3d signing off"])
        self.assertEqual(rc, 0)

    def test_whole_session(self):
        data = plain_mbox(2)
        m = self.put_mbox(data)
        total = sum(x.size for x in m)
        got, rc, log = self.run_pop3d([
            "USER alice", "PASS " + password("alice"), "STAT", "LIST", "UIDL 1",
            "RETR 1", "TOP 2 0", "DELE 1", "RETR 1", "LIST", "RSET", "NOOP", "QUIT"])
        self.match(got, [
            "+OK pop3d ready",
            "+OK send PASS",
            "+OK maildrop has 2 messages (%d octets)" % total,
            "+OK 2 %d" % total,
            "+OK 2 messages (%d octets)" % total,
            "1 %d" % m[0].size, "2 %d" % m[1].size, ".",
            r"re:^\+OK 1 [\x21-\x7e]{1,70}$",
            "+OK %d octets" % m[0].size, m[0].wire,
            "+OK top of message follows", m[1].top(0),
            "+OK message 1 deleted",
            "-ERR message 1 is deleted",
            "+OK 1 message (%d octets)" % m[1].size,
            "2 %d" % m[1].size, ".",
            "+OK maildrop has 2 messages (%d octets)" % total,
            "+OK",
            "+OK pop3d signing off (2 messages left)"])
        self.assertEqual(rc, 0, log)
        self.assertEqual(read_file(self.mbox_path()), data)

    def test_commit(self):
        data = plain_mbox(3)
        m = self.put_mbox(data)
        got, rc, log = self.run_pop3d(["USER alice", "PASS " + password("alice"),
                                       "DELE 2", "QUIT"])
        self.match(got, ["+OK pop3d ready", "+OK send PASS", "re:^\\+OK maildrop has 3 ",
                         "+OK message 2 deleted", "+OK pop3d signing off (2 messages left)"])
        self.assertEqual(rc, 0, log)
        self.assertEqual(read_file(self.mbox_path()),
                         data[:m[1].start] + data[m[2].start:])
        self.assertRegex(log, r"\[session\] logout user=alice retrieved=0 octets=0 deleted=1 left=2 tls=no "
                              r"from=local")

    def test_end_of_input_without_quit_deletes_nothing(self):
        data = plain_mbox(3)
        self.put_mbox(data)
        got, rc, _ = self.run_pop3d(["USER alice", "PASS " + password("alice"),
                                     "DELE 1", "DELE 2"])
        self.match(got, ["+OK pop3d ready", "+OK send PASS", "re:^\\+OK maildrop has 3 ",
                         "+OK message 1 deleted", "+OK message 2 deleted"])
        self.assertEqual(read_file(self.mbox_path()), data)

    def test_three_failed_logins(self):
        got, rc, log = self.run_pop3d(["USER alice", "PASS a", "USER nobody", "PASS b",
                                       "USER alice", "PASS c", "USER alice",
                                       "PASS " + password("alice"), "STAT"])
        self.match(got, ["+OK pop3d ready",
                         "+OK send PASS", "-ERR [AUTH] invalid user name or password",
                         "+OK send PASS", "-ERR [AUTH] invalid user name or password",
                         "+OK send PASS", "-ERR [AUTH] too many failed logins"])
        self.assertNotIn("login user=alice", log)

    def test_bare_lf_and_lower_case(self):
        m = self.put_mbox(plain_mbox(1))
        client = ("user alice\npass %s\nstat\nretr 1\nquit\n" % password("alice")).encode()
        got, rc, _ = self.run_pop3d(client)
        self.match(got, ["+OK pop3d ready", "+OK send PASS", "re:^\\+OK maildrop has 1 ",
                         "+OK 1 %d" % m[0].size, "+OK %d octets" % m[0].size, m[0].wire,
                         "+OK pop3d signing off (1 message left)"])
        self.assertEqual(rc, 0)
