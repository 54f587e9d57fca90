"""The POP3 dialogue: greeting, CAPA, the TRANSACTION commands, every error
reply, command-line parsing limits, pipelining."""

import time

from pop3test import Pop3TestCase, plain_mbox, tricky_mbox, password, unstuff, VERSION, messages

CAPA_ALWAYS = ["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]
# the version, after login only: before it, it helps only an attacker
IMPLEMENTATION = "IMPLEMENTATION pop3d-" + VERSION


class Greeting(Pop3TestCase):

    def test_greeting_and_quit_in_authorization(self):
        c = self.connect(greeting=False)
        self.assertTrue(c.readline().startswith(b"+OK pop3d ready"))
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")
        self.assertTrue(c.expect_closed())
        c.close()
        self.assertTrue(self.srv.wait_idle())
        # the monitor exits 0 after a normal session
        self.assertRegex(self.srv.log(), r"Child \d+ died with code 0")

    def test_no_apop(self):
        c = self.connect(greeting=False)
        g = c.readline()
        self.assertNotRegex(g, rb"<[^>]*@[^>]*>", "APOP timestamp in the greeting")
        self.assertEqual(c.cmd("APOP alice 0123456789abcdef0123456789abcdef"),
                         "-ERR unknown command")
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")

    def test_capa_authorization_with_cleartext(self):
        self.server(cleartext=True)
        c = self.connect()
        st, lines = c.multi("CAPA")
        self.assertEqual(st, "+OK capability list follows")
        for cap in CAPA_ALWAYS + ["USER"]:
            self.assertIn(cap, lines)
        self.assertNotIn("STLS", lines, "STLS offered without a certificate")
        self.assertFalse([l for l in lines if l.startswith("IMPLEMENTATION")],
                         "the version before login")

    def test_capa_authorization_without_cleartext(self):
        self.server(cleartext=False)
        c = self.connect()
        st, lines = c.multi("CAPA")
        self.assertEqual(st, "+OK capability list follows")
        for cap in CAPA_ALWAYS:
            self.assertIn(cap, lines)
        self.assertNotIn("USER", lines)

    def test_capa_transaction(self):
        self.put_mbox(plain_mbox(2))
        c = self.login()
        st, lines = c.multi("CAPA")
        self.assertEqual(st, "+OK capability list follows")
        # RFC 2449 section 5: what AUTHORIZATION offered (the login
        # was allowed), plus the implementation
        for cap in CAPA_ALWAYS + ["USER", "SASL PLAIN", IMPLEMENTATION]:
            self.assertIn(cap, lines)
        self.assertNotIn("STLS", lines)
        self.quit(c)

    def test_no_cleartext_login_without_P(self):
        self.server(cleartext=False)
        self.put_mbox(plain_mbox(1))
        c = self.connect()
        r = c.cmd("USER alice")
        self.assertReply(r, "-ERR cleartext login refused")
        r = c.cmd("PASS " + password("alice"))
        self.assertReply(r, "-ERR")
        # still in AUTHORIZATION: no mailbox access
        self.assertReply(c.cmd("STAT"), "-ERR")
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")

    def test_verbs_case_insensitive_and_bare_lf(self):
        msgs = self.put_mbox(plain_mbox(2))
        c = self.connect()
        c.send(b"user alice\n")
        self.assertReply(c.readline().decode(), "+OK send PASS")
        c.send(b"pAsS " + password("alice").encode() + b"\n")
        self.assertLogin(c.readline().decode(), msgs)
        c.send(b"stat\n")
        self.assertEqual(c.readline().decode(), "+OK 2 %d" % sum(m.size for m in msgs))
        c.send(b"Retr 2\n")
        self.assertEqual(c.readline().decode(), "+OK %d octets" % msgs[1].size)
        self.assertEqual(c.read_until_dot(), msgs[1].wire)
        c.send(b"noop\n")
        self.assertEqual(c.readline(), b"+OK")
        self.quit(c)


class Transaction(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.msgs = self.put_mbox(tricky_mbox())
        self.total = sum(m.size for m in self.msgs)

    def test_login_reply_counts(self):
        c = self.login()
        self.assertLogin(c.login_reply, self.msgs)
        self.assertEqual(len(self.msgs), 12)
        self.quit(c, "+OK pop3d signing off (12 messages left)")

    def test_stat(self):
        c = self.login()
        self.assertEqual(c.cmd("STAT"), "+OK %d %d" % (len(self.msgs), self.total))
        self.quit(c)

    def test_list_all_and_one(self):
        c = self.login()
        st, lines = c.multi("LIST")
        self.assertEqual(st, "+OK %s (%d octets)" % (messages(len(self.msgs)), self.total))
        self.assertEqual(lines, ["%d %d" % (i + 1, m.size) for i, m in enumerate(self.msgs)])
        for i, m in enumerate(self.msgs):
            self.assertEqual(c.cmd("LIST %d" % (i + 1)), "+OK %d %d" % (i + 1, m.size))
        self.quit(c)

    def test_retr_byte_exact(self):
        c = self.login()
        for i, m in enumerate(self.msgs):
            self.assertEqual(c.cmd("RETR %d" % (i + 1)), "+OK %d octets" % m.size)
            self.assertEqual(c.read_until_dot(), m.wire, "message %d" % (i + 1))
        self.quit(c)

    def test_list_size_is_retr_octets_before_unstuffing(self):
        c = self.login()
        for i in range(len(self.msgs)):
            size = int(c.cmd("LIST %d" % (i + 1)).split()[2])
            c.cmd("RETR %d" % (i + 1))
            wire = c.read_until_dot()
            self.assertEqual(size, len(unstuff(wire[:-3])), "message %d" % (i + 1))
        self.quit(c)

    def test_top(self):
        c = self.login()
        for i, m in enumerate(self.msgs):
            for k in (0, 1, 2, 1000):
                self.assertEqual(c.cmd("TOP %d %d" % (i + 1, k)), "+OK top of message follows")
                self.assertEqual(c.read_until_dot(), m.top(k),
                                 "TOP %d %d" % (i + 1, k))
        self.quit(c)

    def test_top_large_count_is_whole_message(self):
        c = self.login()
        c.cmd("TOP 1 99999")
        self.assertEqual(c.read_until_dot(), self.msgs[0].wire)
        self.quit(c)

    def test_uidl_all_and_one(self):
        c = self.login()
        st, lines = c.multi("UIDL")
        self.assertEqual(st, "+OK unique-id listing follows")
        self.assertEqual([l.split()[0] for l in lines],
                         [str(i + 1) for i in range(len(self.msgs))])
        uidls = [l.split()[1] for l in lines]
        for u in uidls:
            self.assertTrue(1 <= len(u) <= 70, u)
            self.assertTrue(all(0x21 <= ord(ch) <= 0x7e for ch in u), u)
        self.assertEqual(len(set(uidls)), len(uidls), "UIDLs not unique: %s" % uidls)
        for i, u in enumerate(uidls):
            self.assertEqual(c.cmd("UIDL %d" % (i + 1)), "+OK %d %s" % (i + 1, u))
        self.quit(c)

    def test_dele_and_deleted_references(self):
        c = self.login()
        self.assertEqual(c.cmd("DELE 2"), "+OK message 2 deleted")
        for cmd in ("RETR 2", "LIST 2", "TOP 2 0", "UIDL 2", "DELE 2"):
            self.assertEqual(c.cmd(cmd), "-ERR message 2 is deleted", cmd)
        rest = [m for i, m in enumerate(self.msgs) if i != 1]
        self.assertEqual(c.cmd("STAT"), "+OK %d %d" % (len(rest), sum(m.size for m in rest)))
        st, lines = c.multi("LIST")
        self.assertEqual(st, "+OK %s (%d octets)" % (messages(len(rest)), sum(m.size for m in rest)))
        self.assertNotIn("2", [l.split()[0] for l in lines])
        self.assertEqual(len(lines), len(rest))
        st, lines = c.multi("UIDL")
        self.assertNotIn("2", [l.split()[0] for l in lines])
        self.assertEqual(len(lines), len(rest))
        # message numbers never change in a session
        self.assertEqual(c.cmd("LIST 3"), "+OK 3 %d" % self.msgs[2].size)
        self.quit(c)

    def test_rset_undeletes(self):
        c = self.login()
        c.cmd("DELE 1")
        c.cmd("DELE 5")
        self.assertEqual(c.cmd("RSET"), "+OK maildrop has %s (%d octets)"
                         % (messages(len(self.msgs)), self.total))
        self.assertEqual(c.cmd("STAT"), "+OK %d %d" % (len(self.msgs), self.total))
        self.assertEqual(c.cmd("LIST 1"), "+OK 1 %d" % self.msgs[0].size)
        self.quit(c, "+OK pop3d signing off (%s left)" % messages(len(self.msgs)))

    def test_noop(self):
        c = self.login()
        self.assertEqual(c.cmd("NOOP"), "+OK")
        self.quit(c)

    def test_no_such_message(self):
        c = self.login()
        n = len(self.msgs) + 1
        for cmd in ("RETR %d" % n, "LIST %d" % n, "TOP %d 1" % n, "UIDL %d" % n,
                    "DELE %d" % n, "RETR 1000000"):
            self.assertEqual(c.cmd(cmd), "-ERR no such message", cmd)
        self.quit(c)

    def test_invalid_message_numbers(self):
        c = self.login()
        for cmd in ("LIST 4294967297", "LIST -1", "LIST 1x", "RETR 18446744073709551617",
                    "DELE abc", "UIDL 1.5", "TOP x 1", "RETR 0x1"):
            self.assertEqual(c.cmd(cmd), "-ERR invalid message number", cmd)
        # nothing was deleted by the bad DELE
        self.assertEqual(c.cmd("STAT"), "+OK %d %d" % (len(self.msgs), self.total))
        self.quit(c)

    def test_syntax_errors(self):
        c = self.login()
        for cmd in ("RETR", "DELE", "TOP", "TOP 1", "RETR 1 2", "DELE 1 2",
                    "STAT 1", "NOOP x", "LIST 1 2", "UIDL 1 2", "TOP 1 2 3"):
            self.assertEqual(c.cmd(cmd), "-ERR syntax error", cmd)
        self.assertEqual(c.cmd("STAT"), "+OK %d %d" % (len(self.msgs), self.total))
        self.quit(c)

    def test_unknown_and_wrong_state_commands(self):
        c = self.connect()
        self.assertEqual(c.cmd("XYZZY"), "-ERR unknown command")
        for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 1", "RSET", "NOOP"):
            self.assertEqual(c.cmd(cmd), "-ERR command not valid in this state", cmd)
        self.assertEqual(c.cmd("PASS x"), "-ERR USER first")
        c.cmd("USER alice")
        c.cmd("PASS " + password("alice"))
        for cmd in ("USER alice", "PASS x"):
            self.assertEqual(c.cmd(cmd), "-ERR command not valid in this state", cmd)
        self.assertEqual(c.cmd("FROB 1"), "-ERR unknown command")
        self.quit(c)


class Parsing(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.msgs = self.put_mbox(plain_mbox(3))

    def test_overlong_line_once_then_continue(self):
        c = self.connect()
        c.send(b"NOOP " + b"x" * 293 + b"\r\n" + b"USER alice\r\n")
        self.assertEqual(c.readline(), b"-ERR line too long")
        # exactly one error: the next reply is USER's
        self.assertEqual(c.readline(), b"+OK send PASS")
        self.assertLogin(c.cmd("PASS " + password("alice")), self.msgs)
        # in TRANSACTION as well, sent in pieces
        c.send(b"LIST " + b"1" * 150)
        time.sleep(0.2)
        c.send(b"1" * 150 + b"\r\nSTAT\r\n")
        self.assertEqual(c.readline(), b"-ERR line too long")
        self.assertEqual(c.readline().decode(), "+OK 3 %d" % sum(m.size for m in self.msgs))
        self.quit(c)

    def test_line_length_limit_boundary(self):
        c = self.login()
        # 255 octets with the CRLF: allowed (an ordinary syntax error)
        line = b"NOOP " + b"x" * 248 + b"\r\n"
        self.assertEqual(len(line), 255)
        c.send(line)
        self.assertEqual(c.readline(), b"-ERR syntax error")
        line = b"NOOP " + b"x" * 249 + b"\r\n"
        c.send(line)
        self.assertEqual(c.readline(), b"-ERR line too long")
        self.assertEqual(c.cmd("NOOP"), "+OK")
        self.quit(c)

    def test_very_long_line_without_newline_is_bounded(self):
        c = self.login()
        c.send(b"X" * 100000)
        c.send(b"\r\nNOOP\r\n")
        self.assertEqual(c.readline(), b"-ERR line too long")
        self.assertEqual(c.readline(), b"+OK")
        self.quit(c)

    def test_nul_in_line(self):
        c = self.login()
        c.send(b"NO\0OP\r\n")
        self.assertEqual(c.readline(), b"-ERR invalid character in command")
        c.send(b"RETR 1\0\r\n")
        self.assertEqual(c.readline(), b"-ERR invalid character in command")
        self.assertEqual(c.cmd("NOOP"), "+OK")
        self.quit(c)

    def test_twenty_bad_commands_close(self):
        c = self.connect()
        for i in range(19):
            self.assertEqual(c.cmd("BOGUS%d" % i), "-ERR unknown command", i)
        self.assertEqual(c.cmd("BOGUS"), "-ERR too many bad commands")
        self.assertTrue(c.expect_closed())

    def test_pipelined_commands_answered_in_order(self):
        m = self.msgs
        c = self.connect()
        c.send("USER alice\r\nPASS %s\r\nSTAT\r\nLIST 2\r\nRETR 1\r\nBOGUS\r\n"
               "TOP 3 0\r\nDELE 2\r\nLIST 2\r\nUIDL 1\r\nNOOP\r\nRETR 3\r\nRSET\r\n"
               "QUIT\r\n" % password("alice"))
        self.assertEqual(c.readline(), b"+OK send PASS")
        self.assertLogin(c.readline().decode(), m)
        self.assertEqual(c.readline().decode(), "+OK 3 %d" % sum(x.size for x in m))
        self.assertEqual(c.readline().decode(), "+OK 2 %d" % m[1].size)
        self.assertEqual(c.readline().decode(), "+OK %d octets" % m[0].size)
        self.assertEqual(c.read_until_dot(), m[0].wire)
        self.assertEqual(c.readline(), b"-ERR unknown command")
        self.assertEqual(c.readline(), b"+OK top of message follows")
        self.assertEqual(c.read_until_dot(), m[2].top(0))
        self.assertEqual(c.readline(), b"+OK message 2 deleted")
        self.assertEqual(c.readline(), b"-ERR message 2 is deleted")
        self.assertTrue(c.readline().startswith(b"+OK 1 "))
        self.assertEqual(c.readline(), b"+OK")
        self.assertEqual(c.readline().decode(), "+OK %d octets" % m[2].size)
        self.assertEqual(c.read_until_dot(), m[2].wire)
        self.assertTrue(c.readline().startswith(b"+OK maildrop has 3 messages"))
        self.assertTrue(c.readline().startswith(b"+OK pop3d signing off (3 messages left)"))
        self.assertTrue(c.expect_closed())

    def test_binary_bytes_and_long_lines_served_as_is(self):
        body = (bytes(b for b in range(256) if b not in (10, 13)) + b"\n"
                + b"nul\0inside\n" + b"y" * 200000 + b"\n" + b"." * 70000 + b"\n"
                + b"\xff\xfe\r\n\x80.\n")
        data = (b"From bin@example.org Mon Jan  1 00:00:00 2024\n"
                b"Subject: =?utf-8?q?bin=C3=A4r?=\nX-8bit: \xc3\xa4\xc3\xb6\n\n" + body)
        msgs = self.put_mbox(data)
        c = self.login()
        self.assertEqual(c.cmd("LIST 1"), "+OK 1 %d" % msgs[0].size)
        self.assertEqual(c.cmd("RETR 1"), "+OK %d octets" % msgs[0].size)
        self.assertEqual(c.read_until_dot(), msgs[0].wire)
        self.assertEqual(c.cmd("TOP 1 3"), "+OK top of message follows")
        self.assertEqual(c.read_until_dot(), msgs[0].top(3))
        self.quit(c)

    def test_many_messages(self):
        # more index entries than fit in one IPC message
        parts = [(b"From m%d@example.org Mon Jan  1 00:00:00 2024\n" % n,
                  b"Subject: %d\n\nbody %d\n" % (n, n)) for n in range(3000)]
        from pop3test import mbox_bytes
        msgs = self.put_mbox(mbox_bytes(parts))
        c = self.login()
        self.assertLogin(c.login_reply, msgs)
        st, lines = c.multi("LIST")
        self.assertEqual(lines, ["%d %d" % (i + 1, m.size) for i, m in enumerate(msgs)])
        st, lines = c.multi("UIDL")
        self.assertEqual(len(lines), 3000)
        self.assertEqual(len(set(l.split()[1] for l in lines)), 3000)
        c.cmd("RETR 3000")
        self.assertEqual(c.read_until_dot(), msgs[-1].wire)
        c.cmd("RETR 1500")
        self.assertEqual(c.read_until_dot(), msgs[1499].wire)
        self.quit(c)

    def test_large_message_streams(self):
        body = b"".join(b"%07d ................................................\n" % i
                        for i in range(60000))
        data = (b"From big@example.org Mon Jan  1 00:00:00 2024\n"
                b"Subject: big\n\n" + body + b"\n")
        msgs = self.put_mbox(data)
        self.assertGreater(msgs[0].size, 3000000)
        c = self.login()
        self.assertEqual(c.cmd("RETR 1"), "+OK %d octets" % msgs[0].size)
        self.assertEqual(c.read_until_dot(), msgs[0].wire)
        self.quit(c)
