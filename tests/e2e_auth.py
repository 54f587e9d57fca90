"""Authentication: USER/PASS, the failure delay and limit, accounts that
must never log in, the per-user session lock."""

import threading
import time

from pop3test import Pop3TestCase, BAD_ACCOUNTS, plain_mbox, password

AUTH_FAIL = "-ERR [AUTH] invalid user name or password"
AUTH_FINAL = "-ERR [AUTH] too many failed logins"


class Auth(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.msgs = self.put_mbox(plain_mbox(3))
        self.server()

    def test_user_pass_good(self):
        c = self.connect()
        self.assertEqual(c.cmd("USER alice"), "+OK send PASS")
        self.assertLogin(c.cmd("PASS " + password("alice")), self.msgs)
        self.quit(c, "+OK pop3d signing off (3 messages left)")

    def test_bad_password_delayed_then_good_login(self):
        c = self.connect()
        c.cmd("USER alice")
        t0 = time.monotonic()
        r = c.cmd("PASS wrong-password")
        elapsed = time.monotonic() - t0
        self.assertEqual(r, AUTH_FAIL)
        self.assertGreaterEqual(elapsed, 1.8, "failure not delayed")
        # still in AUTHORIZATION, a good login works afterwards
        self.assertEqual(c.cmd("STAT"), "-ERR command not valid in this state")
        self.assertEqual(c.cmd("USER alice"), "+OK send PASS")
        self.assertLogin(c.cmd("PASS " + password("alice")), self.msgs)
        self.quit(c)

    def test_unknown_user_same_answers(self):
        c = self.connect()
        # no user enumeration: USER accepts any name
        self.assertEqual(c.cmd("USER nosuchuser"), "+OK send PASS")
        t0 = time.monotonic()
        self.assertEqual(c.cmd("PASS " + password("alice")), AUTH_FAIL)
        self.assertGreaterEqual(time.monotonic() - t0, 1.8)
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")

    def test_three_failures_close(self):
        c = self.connect()
        for i in range(2):
            c.cmd("USER alice")
            self.assertEqual(c.cmd("PASS bad%d" % i), AUTH_FAIL)
        c.cmd("USER alice")
        t0 = time.monotonic()
        self.assertEqual(c.cmd("PASS bad3"), AUTH_FINAL)
        self.assertGreaterEqual(time.monotonic() - t0, 1.8)
        self.assertTrue(c.expect_closed(), "connection open after three failures")

    def test_pass_without_user(self):
        c = self.connect()
        self.assertEqual(c.cmd("PASS " + password("alice")), "-ERR USER first")
        # a failed PASS forgets the USER too
        c.cmd("USER alice")
        self.assertEqual(c.cmd("PASS wrong"), AUTH_FAIL)
        self.assertEqual(c.cmd("PASS " + password("alice")), "-ERR USER first")
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")

    def test_other_users_password_refused(self):
        # bob's password does not open alice's maildrop
        c = self.connect()
        c.cmd("USER alice")
        self.assertEqual(c.cmd("PASS " + password("bob")), AUTH_FAIL)
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")

    def test_root_and_locked_accounts_never_log_in(self):
        # each in its own connection, in parallel (each costs 2 s)
        results = {}

        def attempt(name, pw):
            try:
                c = self.connect(concurrent=True)
                c.cmd("USER " + name)
                results[name] = c.cmd("PASS " + (pw or "x"))
                c.cmd("QUIT")
            except Exception as e:  # reported below
                results[name] = "exception %r" % e

        threads = [threading.Thread(target=attempt, args=(n, p))
                   for n, p, _, _ in BAD_ACCOUNTS]
        # the password "!"+hash's password also with the "!" typed
        threads.append(threading.Thread(target=attempt, args=("bangh", "!bangh-pw")))
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for name, pw, _, _ in BAD_ACCOUNTS:
            self.assertEqual(results.get(name), AUTH_FAIL, name)

    def test_in_use_second_session(self):
        a = self.login("alice")
        b = self.connect(concurrent=True)
        b.cmd("USER alice")
        self.assertReply(b.cmd("PASS " + password("alice")), "-ERR [IN-USE] maildrop already in use")
        # b stays in AUTHORIZATION and can log in as somebody else
        self.assertEqual(b.cmd("STAT"), "-ERR command not valid in this state")
        self.assertEqual(b.cmd("USER bob"), "+OK send PASS")
        self.assertReply(b.cmd("PASS " + password("bob")), "+OK maildrop has 0 messages (0 octets)")
        # a still works
        self.assertEqual(a.cmd("STAT"), "+OK 3 %d" % sum(m.size for m in self.msgs))
        self.assertReply(b.cmd("QUIT"), "+OK pop3d signing off")
        self.quit(a)
        # the lock is released with the session
        c = self.login("alice")
        self.quit(c)

    def test_in_use_released_after_dropped_session(self):
        a = self.login("alice")
        self.finish(a)
        c = self.login("alice")
        self.quit(c)

    def test_in_use_across_servers(self):
        # the session lock is per user on the host, not per listener
        other = self.server()
        first = self.servers[0] if self.servers[0] is not other else None
        self.assertIsNotNone(first)
        a = self.login("alice", srv=first)
        b = self.connect(srv=other, concurrent=True)
        b.cmd("USER alice")
        self.assertReply(b.cmd("PASS " + password("alice")), "-ERR [IN-USE]")
        b.cmd("QUIT")
        self.quit(a)
