"""The maildrop: commit of deletions, concurrent deliveries and rewrites,
refused file types, UIDL stability, locking, maildrop templates."""

import fcntl
import os
import threading
import time

from pop3test import (Pop3TestCase, parse_mbox, plain_mbox, tricky_mbox,
                      from_line, msg, mbox_bytes, write_mailbox, read_file,
                      file_state, password, uid_of, ref_uidls, USERS,
                      messages)

SYS_TEMP = "-ERR [SYS/TEMP] maildrop changed by another program, nothing deleted"


def chunks_without(data, msgs, deleted):
    """The mbox bytes with messages `deleted` (1-based) cut out."""
    return b"".join(data[m.start:m.end] for i, m in enumerate(msgs)
                    if i + 1 not in deleted)


def new_message(n, text=b"new mail\n"):
    return from_line(n, b"late@example.org") + msg(n, b"delivered late", text) + b"\n"


def deliver(path, data, dotlock=True):
    """Appends data as a delivery agent does: dot-lock, fcntl lock, append."""
    lock = path + ".lock"
    if dotlock:
        for _ in range(100):
            try:
                fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                os.close(fd)
                break
            except FileExistsError:
                time.sleep(0.1)
        else:
            raise RuntimeError("dot-lock %s held for 10 s" % lock)
    try:
        with open(path, "ab") as f:
            fcntl.lockf(f, fcntl.LOCK_EX)
            f.write(data)
            f.flush()
            fcntl.lockf(f, fcntl.LOCK_UN)
    finally:
        if dotlock:
            os.unlink(lock)


class Commit(Pop3TestCase):
    """Deletions are committed on QUIT from TRANSACTION and only then."""

    def setUp(self):
        super().setUp()
        self.data = tricky_mbox()
        self.msgs = self.put_mbox(self.data)
        self.path = self.mbox_path()

    def commit(self, deleted):
        c = self.login()
        for n in deleted:
            self.assertEqual(c.cmd("DELE %d" % n), "+OK message %d deleted" % n)
        self.quit(c, "+OK pop3d signing off (%s left)" % messages(len(self.msgs) - len(deleted)))

    def test_delete_middle_messages_others_byte_identical(self):
        self.commit([2, 7])
        new = read_file(self.path)
        self.assertEqual(new, chunks_without(self.data, self.msgs, {2, 7}))
        st = os.stat(self.path)
        self.assertEqual((st.st_uid, st.st_mode & 0o7777), (uid_of("alice"), 0o600))

    def test_delete_first_and_last(self):
        self.commit([1, 12])
        new = read_file(self.path)
        kept = [(m.from_line, m.raw) for i, m in enumerate(self.msgs) if i + 1 not in (1, 12)]
        self.assertEqual([(m.from_line, m.raw) for m in parse_mbox(new)], kept)
        self.assertTrue(new.startswith(self.msgs[1].from_line))

    def test_many_deletions_in_large_mailbox(self):
        parts = [(b"From m%d@example.org Mon Jan  1 00:00:00 2024\n" % n,
                  b"Subject: %d\n\n" % n + b"body line\n" * (n % 50)) for n in range(2000)]
        data = mbox_bytes(parts)
        msgs = self.put_mbox(data)
        gone = set(range(1, 2001, 3))
        c = self.login()
        c.send("".join("DELE %d\r\n" % n for n in sorted(gone)))
        for n in sorted(gone):
            self.assertEqual(c.readline().decode(), "+OK message %d deleted" % n)
        self.quit(c, "+OK pop3d signing off (%s left)" % messages(2000 - len(gone)))
        self.assertEqual(read_file(self.path), chunks_without(data, msgs, gone))
        self.assertFalse(os.path.exists(self.path + ".lock"), "dot-lock left behind")

    def test_next_session_serves_the_rest_identically(self):
        self.commit([3, 4, 5])
        rest = [m for i, m in enumerate(self.msgs) if i + 1 not in (3, 4, 5)]
        c = self.login()
        self.assertLogin(c.login_reply, rest)
        for i, m in enumerate(rest):
            self.assertEqual(c.cmd("RETR %d" % (i + 1)), "+OK %d octets" % m.size)
            self.assertEqual(c.read_until_dot(), m.wire)
        self.quit(c)

    def test_delete_all_then_empty_maildrop(self):
        self.commit(range(1, 13))
        self.assertEqual(parse_mbox(read_file(self.path)) if os.path.exists(self.path) else [], [])
        c = self.login()
        self.assertEqual(c.login_reply, "+OK maildrop has 0 messages (0 octets)")
        self.assertEqual(c.cmd("STAT"), "+OK 0 0")
        st, lines = c.multi("LIST")
        self.assertEqual((st, lines), ("+OK 0 messages (0 octets)", []))
        self.quit(c, "+OK pop3d signing off (0 messages left)")

    def test_rset_then_quit_deletes_nothing(self):
        c = self.login()
        c.cmd("DELE 1")
        c.cmd("RSET")
        self.quit(c)
        self.assertEqual(read_file(self.path), self.data)

    def test_quit_without_deletions_leaves_file_untouched(self):
        before = file_state(self.path)
        c = self.login()
        c.cmd("RETR 1")
        c.read_until_dot()
        self.quit(c)
        self.assertEqual(file_state(self.path), before)
        self.assertFalse(os.path.exists(self.path + ".lock"), "dot-lock left behind")

    def test_dropped_connection_deletes_nothing(self):
        c = self.login()
        c.cmd("DELE 1")
        c.cmd("DELE 2")
        self.finish(c)
        self.assertEqual(read_file(self.path), self.data)

    def test_timeout_deletes_nothing_and_closes(self):
        self.server(timeout=2)
        # in AUTHORIZATION
        c = self.connect()
        t0 = time.monotonic()
        c.sock.settimeout(10)
        rest = b""
        try:
            while True:
                chunk = c.sock.recv(4096)
                if not chunk:
                    break
                rest += chunk
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - t0
        self.assertTrue(rest == b"" or rest.startswith(b"-ERR"), rest)
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLess(elapsed, 8)
        # in TRANSACTION, with a deletion pending
        c = self.login()
        self.assertEqual(c.cmd("DELE 1"), "+OK message 1 deleted")
        t0 = time.monotonic()
        rest = b""
        try:
            while True:
                chunk = c.sock.recv(4096)
                if not chunk:
                    break
                rest += chunk
        except ConnectionResetError:
            pass
        elapsed = time.monotonic() - t0
        self.assertTrue(rest == b"" or rest.startswith(b"-ERR"), rest)
        self.assertGreaterEqual(elapsed, 1.5)
        self.assertLess(elapsed, 8)
        self.assertTrue(self.srv.wait_idle())
        self.assertEqual(read_file(self.path), self.data)


class Concurrent(Pop3TestCase):
    """Other programs touching the maildrop during a session."""

    def setUp(self):
        super().setUp()
        self.data = plain_mbox(4)
        self.msgs = self.put_mbox(self.data)
        self.path = self.mbox_path()

    def test_delivery_during_session_survives_commit(self):
        c = self.login()
        stat = c.cmd("STAT")
        late = new_message(30)
        deliver(self.path, late)
        # the session goes on with the messages it scanned
        self.assertEqual(c.cmd("STAT"), stat)
        self.assertEqual(c.cmd("LIST 5"), "-ERR no such message")
        self.assertEqual(c.cmd("DELE 1"), "+OK message 1 deleted")
        self.assertEqual(c.cmd("DELE 3"), "+OK message 3 deleted")
        self.quit(c)
        new = read_file(self.path)
        self.assertEqual(new, chunks_without(self.data, self.msgs, {1, 3}) + late)
        # and the next session serves it
        c = self.login()
        msgs = parse_mbox(new)
        self.assertLogin(c.login_reply, msgs)
        self.assertEqual(len(msgs), 3)
        c.cmd("RETR 3")
        self.assertEqual(c.read_until_dot(), msgs[2].wire)
        self.quit(c)

    def test_maildrop_not_locked_during_session(self):
        c = self.login()
        self.assertFalse(os.path.exists(self.path + ".lock"), "dot-lock held during the session")
        with open(self.path, "ab") as f:
            # raises if pop3d still holds an fcntl lock
            fcntl.lockf(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            fcntl.lockf(f, fcntl.LOCK_UN)
        self.quit(c)

    def rewrite_during_session(self, rewrite, expect=SYS_TEMP):
        c = self.login()
        c.cmd("RETR 1")
        c.read_until_dot()
        self.assertEqual(c.cmd("DELE 1"), "+OK message 1 deleted")
        self.assertEqual(c.cmd("DELE 4"), "+OK message 4 deleted")
        changed = rewrite()
        self.assertNotEqual(read_file(self.path), self.data)
        self.quit(c, expect)
        self.assertEqual(read_file(self.path), changed, "mailbox modified despite [SYS/TEMP]")

    def test_rewrite_same_size_in_place(self):
        def rewrite():
            i = self.data.index(b"Status: O", self.msgs[2].start)
            with open(self.path, "r+b") as f:
                f.seek(i)
                f.write(b"Status: R")
            return read_file(self.path)
        self.rewrite_during_session(rewrite)

    def test_rewrite_bigger_in_place(self):
        def rewrite():
            new = self.data.replace(b"Subject: plain 2\n",
                                    b"Subject: plain 2\nX-Status: A\n")
            with open(self.path, "r+b") as f:
                f.write(new)
            return new
        self.rewrite_during_session(rewrite)

    def test_rewrite_by_rename(self):
        def rewrite():
            new = self.data.replace(b"Status: O\n", b"Status: RO\n")
            tmp = self.path + ".tmp"
            write_mailbox(tmp, new)
            os.rename(tmp, self.path)
            return new
        self.rewrite_during_session(rewrite, "-ERR [SYS/TEMP] maildrop "
                                    "removed or replaced, nothing deleted")

    def test_truncated_during_session(self):
        def rewrite():
            new = self.data[:self.msgs[2].start]
            with open(self.path, "r+b") as f:
                f.truncate(len(new))
            return new
        self.rewrite_during_session(rewrite)

    def test_retr_of_message_cut_off_ends_session_cleanly(self):
        """Another program cuts the mailbox mid-session: RETR of a
        message past the new end finds it gone, the session ends with a
        log line, not killed by a signal, nothing deleted; the next login
        serves what is left."""
        c = self.login()
        self.assertEqual(c.cmd("DELE 1"), "+OK message 1 deleted")
        with open(self.path, "r+b") as f:
            f.truncate(self.msgs[2].start)
        self.assertEqual(c.cmd("RETR 2"), "+OK %d octets" % self.msgs[1].size)
        self.assertEqual(c.read_until_dot(), self.msgs[1].wire)
        self.assertEqual(c.cmd("RETR 4"), "+OK %d octets" % self.msgs[3].size)
        self.assertTrue(c.expect_closed(), "session went on past the cut")
        c.close()
        self.assertTrue(self.srv.wait_idle(10))
        log = self.srv.log()
        self.assertRegex(log, r"mailbox read failed user=alice offset=\d+ "
                         r'error="file truncated"')
        self.assertIn("reason=mailbox-read-failed", log)
        self.assertNotIn("process killed signal=", log)
        self.assertEqual(read_file(self.path), self.data[:self.msgs[2].start])
        c = self.login()
        self.assertEqual(c.cmd("STAT"), "+OK 2 %d" % sum(m.size for m in self.msgs[:2]))
        self.quit(c)

    def test_waits_for_dot_lock(self):
        lock = self.path + ".lock"
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        timer = threading.Timer(2.0, os.unlink, [lock])
        timer.start()
        try:
            c = self.connect()
            c.cmd("USER alice")
            t0 = time.monotonic()
            r = c.cmd("PASS " + password("alice"))
            elapsed = time.monotonic() - t0
        finally:
            timer.join()
        self.assertLogin(r, self.msgs)
        self.assertGreaterEqual(elapsed, 1.0, "dot-lock ignored")
        self.quit(c)
        self.assertFalse(os.path.exists(lock))

    def test_waits_for_fcntl_lock(self):
        f = open(self.path, "ab")
        fcntl.lockf(f, fcntl.LOCK_EX)

        def release():
            fcntl.lockf(f, fcntl.LOCK_UN)
            f.close()
        timer = threading.Timer(2.0, release)
        timer.start()
        try:
            c = self.connect()
            c.cmd("USER alice")
            t0 = time.monotonic()
            r = c.cmd("PASS " + password("alice"))
            elapsed = time.monotonic() - t0
        finally:
            timer.join()
        self.assertLogin(r, self.msgs)
        self.assertGreaterEqual(elapsed, 1.0, "fcntl lock ignored")
        self.quit(c)

    def test_stale_dot_lock_removed(self):
        lock = self.path + ".lock"
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        old = time.time() - 3600
        os.utime(lock, (old, old))
        c = self.connect()
        c.cmd("USER alice")
        t0 = time.monotonic()
        self.assertLogin(c.cmd("PASS " + password("alice")), self.msgs)
        self.assertLess(time.monotonic() - t0, 8)
        c.cmd("DELE 1")
        self.quit(c)
        self.assertFalse(os.path.exists(lock), "stale dot-lock left")
        self.assertEqual(read_file(self.path), chunks_without(self.data, self.msgs, {1}))

    def test_locked_too_long_in_use(self):
        lock = self.path + ".lock"
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
        try:
            before = file_state(self.path)
            c = self.connect()
            c.sock.settimeout(40)
            c.cmd("USER alice")
            r = c.cmd("PASS " + password("alice"))
            self.assertReply(r, "-ERR [IN-USE]")
            c.close()
            self.assertTrue(self.srv.wait_idle())
            self.assertEqual(file_state(self.path), before)
            self.assertTrue(os.path.exists(lock), "somebody else's dot-lock removed")
        finally:
            os.unlink(lock)


class DotLock(Pop3TestCase):
    """Who makes the NAME.lock dot-lock: the maildrop process where the
    user can write the directory, else the root monitor."""

    def watch_lock(self, path, user, mbox_dir_user):
        lock = path + ".lock"
        big = b"".join((b"From x%d@example.org Mon Jan  1 00:00:00 2024\n" % n)
                       + b"Subject: %d\n\n" % n + b"z" * 200000 + b"\n\n" for n in range(100))
        write_mailbox(path, big, user)
        owners = set()
        stop = []

        def poll():
            while not stop:
                try:
                    owners.add(os.lstat(lock).st_uid)
                except FileNotFoundError:
                    pass
        t = threading.Thread(target=poll)
        t.start()
        try:
            c = self.login(user)
            c.cmd("DELE 1")
            self.quit(c, "+OK pop3d signing off (99 messages left)")
        finally:
            stop.append(1)
            t.join()
        self.assertFalse(os.path.exists(lock), "dot-lock left behind")
        self.assertEqual(owners, {mbox_dir_user}, "dot-lock owners seen: %s" % owners)
        self.assertEqual(len(parse_mbox(read_file(path))), 99)

    def test_monitor_makes_lock_in_root_owned_dir(self):
        self.watch_lock(self.mbox_path("alice"), "alice", 0)

    def test_maildrop_makes_lock_in_user_dir(self):
        # a directory per user, owned by the user (not via %h)
        d = os.path.join(self.spool, "carol")
        os.mkdir(d, 0o700)
        os.chown(d, uid_of("carol"), USERS["carol"][2])
        self.server(maildrop=os.path.join(self.spool, "%u", "mbox"))
        self.watch_lock(os.path.join(d, "mbox"), "carol", uid_of("carol"))


class FileTypes(Pop3TestCase):
    """Maildrops that must be refused with [SYS/PERM] and left untouched."""

    def refused(self, path):
        before = file_state(path)
        c = self.connect()
        c.cmd("USER alice")
        r = c.cmd("PASS " + password("alice"))
        self.assertReply(r, "-ERR [SYS/PERM]")
        self.assertTrue(c.expect_closed(), "connection open after [SYS/PERM]")
        c.close()
        self.assertTrue(self.srv.wait_idle())
        self.assertEqual(file_state(path), before, "refused maildrop modified")

    def test_missing_maildrop_is_empty(self):
        c = self.login()
        self.assertEqual(c.login_reply, "+OK maildrop has 0 messages (0 octets)")
        self.assertEqual(c.cmd("STAT"), "+OK 0 0")
        st, lines = c.multi("UIDL")
        self.assertEqual(lines, [])
        self.assertEqual(c.cmd("RETR 1"), "-ERR no such message")
        self.quit(c, "+OK pop3d signing off (0 messages left)")

    def test_empty_file_is_empty_maildrop(self):
        self.put_mbox(b"")
        c = self.login()
        self.assertEqual(c.login_reply, "+OK maildrop has 0 messages (0 octets)")
        self.quit(c)

    def test_not_an_mbox(self):
        self.put_mbox(b"Subject: not an mbox\n\nFrom nobody\n")
        self.refused(self.mbox_path())

    def test_not_an_mbox_header_first(self):
        self.put_mbox(b"From: someone@example.org\nSubject: x\n\nbody\n")
        self.refused(self.mbox_path())

    def test_symlink(self):
        target = os.path.join(self.spool, "real")
        write_mailbox(target, plain_mbox(2))
        os.symlink(target, self.mbox_path())
        tstate = file_state(target)
        self.refused(self.mbox_path())
        self.assertEqual(file_state(target), tstate)

    def test_fifo(self):
        os.mkfifo(self.mbox_path(), 0o600)
        os.chown(self.mbox_path(), uid_of("alice"), uid_of("alice"))
        self.refused(self.mbox_path())

    def test_directory(self):
        os.mkdir(self.mbox_path(), 0o700)
        os.chown(self.mbox_path(), uid_of("alice"), uid_of("alice"))
        self.refused(self.mbox_path())

    def test_other_owner(self):
        write_mailbox(self.mbox_path(), plain_mbox(2), user="bob")
        os.chmod(self.mbox_path(), 0o644)
        self.refused(self.mbox_path())

    def test_root_owned(self):
        write_mailbox(self.mbox_path(), plain_mbox(2))
        os.chown(self.mbox_path(), 0, 0)
        self.refused(self.mbox_path())


class Uidl(Pop3TestCase):

    def uidls(self, user="alice"):
        c = self.login(user)
        st, lines = c.multi("UIDL")
        self.assertEqual(st, "+OK unique-id listing follows")
        self.quit(c)
        return [l.split(" ", 1)[1] for l in lines]

    def test_matches_reference(self):
        msgs = self.put_mbox(tricky_mbox())
        self.assertEqual(self.uidls(), ref_uidls(msgs))

    def test_header_twins_keep_uidl_after_delete(self):
        # the same From_ line and headers, bodies of different lengths:
        # not twins, so deleting the first leaves the second's UIDL
        twin = msg(1, b"twin", b"short\n")
        data = mbox_bytes([(from_line(1), twin),
                           (from_line(1), msg(1, b"twin", b"a longer body\n"))])
        msgs = self.put_mbox(data)
        before = self.uidls()
        self.assertEqual(before, ref_uidls(msgs))
        self.assertNotIn(".", before[0] + before[1])
        c = self.login()
        c.cmd("DELE 1")
        self.quit(c)
        self.assertEqual(self.uidls(), [before[1]])

    def test_stable_across_sessions(self):
        self.put_mbox(tricky_mbox())
        self.assertEqual(self.uidls(), self.uidls())

    def test_duplicates_distinct(self):
        msgs = self.put_mbox(tricky_mbox())
        self.assertEqual((msgs[6].from_line, msgs[6].raw), (msgs[7].from_line, msgs[7].raw))
        u = self.uidls()
        self.assertNotEqual(u[6], u[7])
        self.assertEqual(len(set(u)), len(u))

    def test_stable_after_deleting_others(self):
        self.put_mbox(plain_mbox(5))
        before = self.uidls()
        c = self.login()
        c.cmd("DELE 2")
        c.cmd("DELE 4")
        self.quit(c)
        self.assertEqual(self.uidls(), [before[0], before[2], before[4]])

    def test_stable_after_status_rewrite(self):
        data = plain_mbox(4)
        self.put_mbox(data)
        before = self.uidls()
        data = data.replace(b"Subject: plain 1\n", b"Subject: plain 1\nX-Status: A\n")
        data = data.replace(b"Status: O\n", b"Status: RO\n")
        write_mailbox(self.mbox_path(), data)
        self.assertEqual(self.uidls(), before)

    def test_stable_after_delivery_and_not_positional(self):
        data = plain_mbox(3)
        self.put_mbox(data)
        before = self.uidls()
        deliver(self.mbox_path(), new_message(40))
        after = self.uidls()
        self.assertEqual(after[:3], before)
        self.assertNotIn(after[3], before)
        # the same messages in another order keep their UIDLs
        msgs = parse_mbox(data)
        swapped = b"".join(data[m.start:m.end] for m in (msgs[2], msgs[0], msgs[1]))
        write_mailbox(self.mbox_path(), swapped)
        self.assertEqual(self.uidls(), [before[2], before[0], before[1]])


class SplitScan(Pop3TestCase):
    """A mailbox big enough (SCAN_SPLIT_MIN, 8 MB) that its scan is split
    in two at a From_ line and the second half scanned by a thread, in
    the maildrop process's sandbox: the answers of a scan of the whole."""

    def test_large_mailbox_uidls_sizes_and_commit(self):
        parts = []
        line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ+/"
        for n in range(6400):
            if n % 1000 == 0:
                # byte-identical copies on both sides of the middle
                parts.append(from_line(1) + msg(1, b"twin", line + b"\n") + b"\n")
                continue
            end = b"\r\n" if n % 3 == 0 else b"\n"
            body = b"".join(line[:20 + (n * k) % 44] + end for k in range(30))
            parts.append(from_line(n % 60) + msg(n % 60, b"big %d" % n, body,
                                                 extra_headers=b"Status: O\n")
                         + b"\n")
        data = b"".join(parts)
        self.assertGreater(len(data), 8 << 20)
        msgs = self.put_mbox(data)
        c = self.login()
        self.assertLogin(c.login_reply, msgs)
        st, lines = c.multi("UIDL")
        self.assertEqual([l.split(" ", 1)[1] for l in lines], ref_uidls(msgs))
        st, lines = c.multi("LIST")
        self.assertEqual([int(l.split()[1]) for l in lines], [m.size for m in msgs])
        self.assertEqual(c.cmd("DELE 3200"), "+OK message 3200 deleted")
        # the commit's check scans the file again, split too
        self.quit(c, "+OK pop3d signing off (%s left)" % messages(len(msgs) - 1))
        self.assertEqual(read_file(self.mbox_path()), chunks_without(data, msgs, {3200}))


class Templates(Pop3TestCase):

    def test_home_mbox_user_owned_dir(self):
        home = self.env.home("carol")
        path = os.path.join(home, "mbox")
        data = plain_mbox(3)
        write_mailbox(path, data, "carol")
        msgs = parse_mbox(data)
        self.server(maildrop="%h/mbox")
        c = self.login("carol")
        self.assertLogin(c.login_reply, msgs)
        c.cmd("RETR 2")
        self.assertEqual(c.read_until_dot(), msgs[1].wire)
        c.cmd("DELE 2")
        self.quit(c, "+OK pop3d signing off (2 messages left)")
        self.assertEqual(read_file(path), chunks_without(data, msgs, {2}))
        st = os.stat(path)
        self.assertEqual((st.st_uid, st.st_gid, st.st_mode & 0o7777),
                         (uid_of("carol"), USERS["carol"][2], 0o600))
        self.assertEqual(sorted(os.listdir(home)), ["mbox"], "files left in the home dir")

    def test_percent_escape(self):
        path = os.path.join(self.spool, "dave%x")
        data = plain_mbox(2)
        write_mailbox(path, data, "dave")
        self.server(maildrop=os.path.join(self.spool, "%u%%x"))
        c = self.login("dave")
        self.assertLogin(c.login_reply, parse_mbox(data))
        self.quit(c)

    def test_each_user_own_maildrop(self):
        a = self.put_mbox(plain_mbox(2), "alice")
        b = self.put_mbox(plain_mbox(4), "bob")
        c = self.login("alice")
        self.assertLogin(c.login_reply, a)
        self.quit(c)
        c = self.login("bob")
        self.assertLogin(c.login_reply, b)
        self.quit(c)
