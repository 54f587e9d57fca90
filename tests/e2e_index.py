"""The index cache (-i): after every change other programs make to a
mailbox, the next login answers STAT, LIST, UIDL and RETR exactly as a
pop3d with -i none does on the same mailbox; a damaged, foreign, old or
forged index file never gives other answers (a forged one misleads only
its user's view, and never makes the commit lose mail); a missing or
read-only index directory never refuses a login.

Each test runs two servers on the same spool, one with an index
directory of its own and -v (its log says how each login used the
index: "index: unchanged", "grown" or "rescan"), one with -i none.
"""

import fcntl
import os
import random
import re
import shutil
import struct
import subprocess
import threading
import time

import pop3test as pt

MUL = 0x9e3779b97f4a7c15
SEED = 0x6a09e667f3bcc908
M64 = (1 << 64) - 1
HDR = 152
UIDL_SIZE = 72
ENTRY = 32 + UIDL_SIZE


def hash_word(h, w):
    h = ((h ^ w) * MUL) & M64
    return h ^ (h >> 31)


def seal(data):
    """data with the index checksum of everything before its last 8
    bytes put into them, as index.c computes it."""
    body = data[:-8]
    h = SEED
    for i in range(0, len(body) - len(body) % 8, 8):
        h = hash_word(h, struct.unpack_from("<Q", body, i)[0])
    return body + struct.pack("<Q", hash_word(h, len(body)))


def message(n, body_lines=3, extra=b"", final_lf=True, crlf=False):
    """One mbox message with a From_ line of its own."""
    eol = b"\r\n" if crlf else b"\n"
    text = (b"From sender%d@example.org Mon Jan  1 10:%02d:%02d 2024\n"
            % (n, n // 60 % 60, n % 60)
            + b"Message-ID: <%d@example.org>" % n + eol
            + b"Subject: message %d" % n + eol + extra + eol
            + b"".join(b"line %d of %d%s" % (i, n, eol)
                       for i in range(body_lines)))
    text += b".dot\n" if n % 3 == 0 else b""
    return text + (b"\n" if final_lf else b"tail without newline")


def mailbox(ns):
    return b"".join(message(n) for n in ns)


class IndexTest(pt.Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.cache = self.env.new_dir("cache")
        self.ix = self.server(self.args(self.cache) + ["-v"])
        self.none = self.server(self.args("none"))
        self.log_pos = 0
        self.ready = {}

    def args(self, idir):
        return self.default_args() + ["-i", idir]

    # sessions ----------------------------------------------------------

    def wait_gone(self, user):
        """Waits for the session of user to end: its monitor holds the
        session lock until it and its children have exited."""
        path = os.path.join("/run/pop3d", user)
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return
        # flock has no timeout of its own: it blocks in a thread
        t = threading.Thread(target=fcntl.flock, args=(fd, fcntl.LOCK_EX), daemon=True)
        t.start()
        t.join(10)
        self.assertFalse(t.is_alive(), "the session of %s did not end" % user)
        os.close(fd)

    def session(self, srv, user="alice", dele=()):
        """Logs in, reads everything (RETR pipelined), deletes dele,
        quits; returns what the client saw."""
        # a connection opened at the end of the last session: pop3d has
        # started meanwhile
        c = self.ready.pop((srv, user), None) or self.connection(srv)
        c.readline()
        c.send("USER %s\r\nPASS %s\r\n" % (user, pt.password(user)))
        c.readline()
        login = c.readline().decode("latin-1")
        # the next session's pop3d starts while this one runs
        self.ready[(srv, user)] = self.connection(srv)
        if not login.startswith("+OK"):
            # refused (not an mbox): the refusal is the answer
            c.close()
            self.wait_gone(user)
            return (login,), None
        c.send("STAT\r\nLIST\r\nUIDL\r\n")
        stat = c.readline().decode("latin-1")
        lst = (c.readline(), c.read_until_dot())
        uidl = (c.readline(), c.read_until_dot())
        n = int(stat.split()[1])
        c.send("".join("RETR %d\r\n" % i for i in range(1, n + 1)))
        retr = [(c.readline(), c.read_until_dot()) for _ in range(n)]
        c.send("".join("DELE %d\r\n" % i for i in dele) + "QUIT\r\n")
        for _ in dele:
            self.assertTrue(c.readline().startswith(b"+OK"))
        quit_reply = c.readline()
        c.close()
        self.wait_gone(user)
        return (login, stat, lst, uidl, retr), quit_reply

    def connection(self, srv):
        c = pt.Client(srv.host, srv.port)
        self.clients.append(c)
        return c

    def how(self):
        """How the last login of the index server used the index (its log
        is read from where the last call left it)."""
        if not self.ix.logf.closed:
            self.ix.logf.flush()
        with open(self.ix.log_path, "rb") as f:
            f.seek(self.log_pos)
            text = f.read()
        end = text.rfind(b"\n") + 1
        self.log_pos += end
        lines = [l for l in text[:end].decode("latin-1").splitlines() if "index used " in l]
        self.assertEqual(len(lines), 1, text)
        return lines[0].rsplit(" how=", 1)[1].split()[0]

    def same(self, expect=None, user="alice"):
        """The index server answers as -i none does; expect: how it
        must have used the index."""
        got, _ = self.session(self.ix, user)
        how = self.how()
        want, _ = self.session(self.none, user)
        self.assertEqual(got, want, "with the index (%s) and without" % how)
        if expect is not None:
            self.assertEqual(how, expect)
        return got

    def index_file(self, user="alice"):
        return os.path.join(self.cache, user)

    def put(self, data, user="alice"):
        pt.write_mailbox(self.mbox_path(user), data, user)

    def rewrite(self, data, user="alice"):
        """Rewrites the mailbox in place, as mutt or mailx do."""
        with open(self.mbox_path(user), "r+b") as f:
            f.write(data)
            f.truncate()

    def append(self, data, user="alice"):
        with open(self.mbox_path(user), "ab") as f:
            f.write(data)


class Changes(IndexTest):
    """Point 2 of the issue: what mail readers and admins really do."""

    def test_unchanged_and_grown(self):
        self.put(mailbox(range(1, 6)))
        self.same("rescan")
        self.same("unchanged")
        self.append(message(6))
        self.same("grown")
        self.same("unchanged")

    def test_whole_rewrite(self):
        self.put(mailbox(range(1, 6)))
        self.same("rescan")
        # mutt: Status headers added, a message gone, the file rewritten
        self.rewrite(b"".join(message(n, extra=b"Status: RO\n") for n in (1, 3, 4, 5)))
        self.same("rescan")
        # and one that grew: every message one header longer
        self.rewrite(b"".join(message(n, extra=b"Status: RO\nX-Status: A\n")
                              for n in (1, 3, 4, 5)) + message(7))
        self.same("rescan")

    def test_status_rewrite_changes_sizes(self):
        self.put(mailbox(range(1, 6)))
        self.same("rescan")
        self.rewrite(message(1, extra=b"Status: RO\n") + mailbox(range(2, 6)))
        self.same("rescan")
        # the last message only: the old end moved
        self.rewrite(message(1, extra=b"Status: RO\n") + mailbox(range(2, 5))
                     + message(5, extra=b"Status: O\n"))
        self.same("rescan")

    def test_message_deleted_by_another_program(self):
        self.put(mailbox(range(1, 6)))
        self.same("rescan")
        self.rewrite(mailbox((1, 2, 4, 5)))
        self.same("rescan")
        # deleted, then more delivered than was deleted
        self.rewrite(mailbox((2, 4, 5)) + mailbox((6, 7)))
        self.same("rescan")

    def test_replaced_by_rename(self):
        self.put(mailbox(range(1, 4)))
        self.same("rescan")
        tmp = self.mbox_path() + ".new"
        pt.write_mailbox(tmp, mailbox(range(1, 4)) + message(4))
        os.rename(tmp, self.mbox_path())
        self.same("rescan")

    def test_restored_with_cp(self):
        self.put(mailbox(range(1, 6)))
        backup = os.path.join(self.spool, "backup")
        shutil.copy(self.mbox_path(), backup)
        self.same("rescan")
        # another program deletes 2, the index learns it; then the
        # backup, larger, comes back over it
        self.rewrite(mailbox((1, 3, 4, 5)))
        self.same("rescan")
        subprocess.run(["cp", backup, self.mbox_path()], check=True)
        self.same("rescan")
        # a smaller, older backup
        self.append(message(6))
        self.same("grown")
        subprocess.run(["cp", backup, self.mbox_path()], check=True)
        self.same("rescan")

    def test_truncation(self):
        self.put(mailbox(range(1, 6)))
        self.same("rescan")
        os.truncate(self.mbox_path(), len(mailbox(range(1, 4))) + 30)
        self.same("rescan")
        os.truncate(self.mbox_path(), 0)
        self.same("rescan")

    def test_append_ending_mid_line(self):
        self.put(mailbox(range(1, 4)))
        self.same("rescan")
        half = message(4, body_lines=5)
        self.append(half[:len(half) // 2 + 3])
        self.same("grown")
        self.append(half[len(half) // 2 + 3:])
        self.same("grown")
        self.append(message(5, final_lf=False))
        self.same("grown")
        self.append(b" and the rest\n\n" + message(6, crlf=True))
        self.same("grown")

    def test_same_size_rewrite_mtime_set_back(self):
        self.put(mailbox(range(1, 5)))
        first = self.same("rescan")
        path = self.mbox_path()
        st = os.stat(path)
        data = pt.read_file(path)
        # same size, a different Subject (so another UIDL), mtime back
        self.rewrite(data.replace(b"Subject: message 2", b"Subject: massage 2"))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        self.assertEqual(os.stat(path).st_mtime_ns, st.st_mtime_ns)
        self.assertEqual(os.stat(path).st_size, st.st_size)
        got = self.same("rescan")
        self.assertNotEqual(got[3], first[3])

    def test_touch_r(self):
        # the same with touch -r, as an admin would
        self.put(mailbox(range(1, 5)))
        ref = os.path.join(self.spool, "ref")
        shutil.copy2(self.mbox_path(), ref)
        self.same("rescan")
        self.rewrite(pt.read_file(self.mbox_path()).replace(b"line 1 of 3", b"LINE 1 of 3"))
        subprocess.run(["touch", "-r", ref, self.mbox_path()], check=True)
        self.same("rescan")


class IndexFiles(IndexTest):
    """Point 3: the index file is untrusted input."""

    def setUp(self):
        super().setUp()
        self.put(mailbox(range(1, 6)))
        self.first = self.same("rescan")
        self.good = pt.read_file(self.index_file())

    def put_index(self, data, user="alice"):
        with open(self.index_file(user), "r+b") as f:
            f.write(data)
            f.truncate()

    def test_corrupt(self):
        for off in (0, 9, 30, 100, HDR + 5, len(self.good) - 100, len(self.good) - 1):
            bad = bytearray(self.good)
            bad[off] ^= 0x20
            self.put_index(bytes(bad))
            self.same("rescan")
            self.put_index(bytes(bad))
            self.assertEqual(self.same("rescan"), self.first)

    def test_truncated(self):
        for n in (0, 7, HDR, len(self.good) // 2, len(self.good) - 8, len(self.good) - 1):
            self.put_index(self.good[:n])
            self.assertEqual(self.same("rescan"), self.first)

    def test_another_users(self):
        self.put(mailbox(range(1, 6)), "bob")
        self.same("rescan", "bob")
        # bob's index, for a mailbox with the very same bytes, as alice's
        self.put_index(pt.read_file(self.index_file("bob")))
        self.assertEqual(self.same("rescan"), self.first)

    def test_another_files(self):
        # the index of another mailbox of alice's, same bytes
        other = self.env.new_dir("spool")
        pt.write_mailbox(os.path.join(other, "alice"), mailbox(range(1, 6)))
        srv = self.server(self.default_args(maildrop=os.path.join(other, "%u"))
                          + ["-i", self.cache])
        self.session(srv)
        self.assertNotEqual(pt.read_file(self.index_file()), self.good)
        self.assertEqual(self.same("rescan"), self.first)

    def test_old_format(self):
        old = bytearray(self.good)
        struct.pack_into("<I", old, 8, 0)
        self.put_index(seal(bytes(old)))
        self.assertEqual(self.same("rescan"), self.first)
        struct.pack_into("<I", old, 8, 2)
        self.put_index(seal(bytes(old)))
        self.assertEqual(self.same("rescan"), self.first)
        # sealed unchanged, it is used: the forgeries above were read
        self.put_index(seal(self.good))
        self.assertEqual(self.same("unchanged"), self.first)

    def test_forged_view_never_loses_mail(self):
        # alice swaps the UIDLs of messages 1 and 2 and makes message 3
        # larger in her index: her own view changes, nobody else's does
        forged = bytearray(self.good)
        nsamples = struct.unpack_from("<I", forged, 20)[0]
        ent = HDR + 16 * nsamples
        u1 = forged[ent + 32:ent + ENTRY]
        u2 = forged[ent + ENTRY + 32:ent + 2 * ENTRY]
        forged[ent + 32:ent + ENTRY] = u2
        forged[ent + ENTRY + 32:ent + 2 * ENTRY] = u1
        e3 = ent + 2 * ENTRY
        size = struct.unpack_from("<Q", forged, e3 + 24)[0]
        struct.pack_into("<Q", forged, e3 + 24, size + 4)
        self.put_index(seal(bytes(forged)))
        before = pt.read_file(self.mbox_path())
        view, _ = self.session(self.ix)
        self.assertEqual(self.how(), "unchanged")
        self.assertNotEqual(view, self.first)
        # the commit checks the file, not the index: nothing deleted
        _, reply = self.session(self.ix, dele=(1, 3))
        self.assertEqual(self.how(), "unchanged")
        self.assertTrue(reply.startswith(b"-ERR [SYS/TEMP]"), reply)
        self.assertEqual(pt.read_file(self.mbox_path()), before)
        self.assertEqual(self.session(self.none)[0], self.first)


class Commit(IndexTest):

    def test_deletions_then_changes(self):
        self.put(mailbox(range(1, 8)))
        self.same("rescan")
        _, reply = self.session(self.ix, dele=(1, 4))
        self.assertTrue(reply.startswith(b"+OK"), reply)
        self.how()
        self.same("rescan")
        self.append(message(9))
        self.same("grown")
        _, reply = self.session(self.ix, dele=(5,))
        self.how()
        # as many bytes delivered as were deleted, messages alike
        self.append(message(10))
        self.same()
        self.assertEqual(pt.parse_mbox(pt.read_file(self.mbox_path()))[-1].from_line,
                         message(10).split(b"\n")[0] + b"\n")


class Directory(IndexTest):
    """Point 4: never in the way."""

    def logins_work(self, srv, expect_line):
        self.put(mailbox(range(1, 4)))
        for _ in range(2):
            got, _ = self.session(srv)
            want, _ = self.session(self.none)
            self.assertEqual(got, want)
        lines = [l for l in srv.log().splitlines() if expect_line in l]
        self.assertEqual(len(lines), 2, srv.log())

    def test_missing(self):
        srv = self.server(self.args(os.path.join(self.cache, "missing")))
        self.logins_work(srv, "index directory")

    def test_unsafe(self):
        d = self.env.new_dir("cache", mode=0o777)
        srv = self.server(self.args(d))
        self.logins_work(srv, "reason=not-root-only")
        self.assertEqual(os.listdir(d), [])

    def test_symlink(self):
        link = os.path.join(self.env.root, "cache-link-%d" % os.getpid())
        os.symlink(self.cache, link)
        self.addCleanup(os.unlink, link)
        srv = self.server(self.args(link))
        self.logins_work(srv, "index directory")

    def test_read_only(self):
        d = self.env.new_dir("cache")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k,mode=0755", "tmpfs", d], check=True)
        self.addCleanup(subprocess.run, ["umount", d], check=True)
        srv = self.server(self.args(d))
        self.logins_work(srv, "index not used user=alice")

    def test_full(self):
        d = self.env.new_dir("cache")
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4k,mode=0755", "tmpfs", d], check=True)
        self.addCleanup(subprocess.run, ["umount", d], check=True)
        fd = os.open(os.path.join(d, "filler"), os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            while os.write(fd, b"x" * 4096) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        srv = self.server(self.args(d))
        self.logins_work(srv, "index not written mailbox=")

    def test_index_file_owned_by_the_user(self):
        self.put(mailbox(range(1, 3)))
        self.session(self.ix)
        st = os.lstat(self.index_file())
        self.assertEqual((st.st_uid, st.st_mode & 0o7777, st.st_nlink),
                         (pt.uid_of("alice"), 0o600, 1))

    def test_index_file_a_symlink(self):
        self.put(mailbox(range(1, 3)))
        target = os.path.join(self.spool, "target")
        pt.write_mailbox(target, b"precious\n", "bob")
        os.symlink(target, self.index_file())
        got, _ = self.session(self.ix)
        self.assertEqual(got, self.session(self.none)[0])
        self.assertEqual(pt.read_file(target), b"precious\n")
        self.assertEqual(os.stat(target).st_uid, pt.uid_of("bob"))

    def test_configtest(self):
        d = self.env.new_dir("cache", mode=0o777)
        for idir, ok in ((self.cache, True), ("none", True), (d, False),
                         (os.path.join(self.cache, "missing"), True)):
            p = subprocess.run([pt.POP3D, "-n", "-P", "-a", self.env.passwd, "-i", idir],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            self.assertEqual(p.returncode == 0, ok, p.stdout)


class Random(IndexTest):
    """1,000 rounds of appends, deletions by pop3d, rewrites and logins,
    each compared against -i none.  To keep it near a minute on two
    cores, the -i none server serves bob, whose mailbox is kept
    byte-identical to alice's, in parallel with alice's session on the
    index server; the two files must stay identical too."""

    ROUNDS = int(os.environ.get("E2E_INDEX_ROUNDS", "1000"))

    def both(self, fn):
        for user in ("alice", "bob"):
            fn(self.mbox_path(user), user)

    def parallel(self, dele=()):
        out = {}
        t = threading.Thread(target=lambda: out.update(
            bob=self.session(self.none, "bob", dele)))
        t.start()
        try:
            alice = self.session(self.ix, "alice", dele)
        finally:
            t.join()
        self._how = self.how()
        self.assertIn("bob", out)
        self.assertEqual(alice, out["bob"], "with the index (%s) and without, round %d, "
                         "seed %d" % (self._how, self.round, self.seed))
        self.assertEqual(pt.read_file(self.mbox_path("alice")),
                         pt.read_file(self.mbox_path("bob")))
        return alice

    def test_random_rounds(self):
        self.seed = int(os.environ.get("E2E_INDEX_SEED", str(int(time.time()))))
        rng = random.Random(self.seed)
        nxt = 4
        self.round = 0
        self.both(lambda p, u: pt.write_mailbox(p, mailbox(range(1, 4)), u))
        hows = {}
        for self.round in range(self.ROUNDS):
            op = rng.random()
            data = pt.read_file(self.mbox_path())
            msgs = pt.parse_mbox(data)
            if op < 0.35:
                # a delivery, sometimes in two halves with a login between
                m = message(nxt, body_lines=rng.randrange(6), crlf=rng.random() < 0.2,
                            final_lf=rng.random() < 0.9)
                nxt += 1
                if data and not data.endswith(b"\n"):
                    m = b"\n\n" + m
                cut = rng.randrange(len(m) + 1) if rng.random() < 0.3 else len(m)
                self.both(lambda p, u: self.append(m[:cut], u))
                if cut < len(m):
                    self.parallel()
                    self.both(lambda p, u: self.append(m[cut:], u))
            elif op < 0.55 and msgs:
                # the login of this round deletes as well
                dele = sorted(rng.sample(range(1, len(msgs) + 1),
                                         rng.randrange(1, min(3, len(msgs)) + 1)))
                (_, reply) = self.parallel(dele)
                self.assertTrue(reply.startswith(b"+OK"), reply)
                hows[self._how] = hows.get(self._how, 0) + 1
                continue
            elif op < 0.75 and msgs:
                data = self.changed(rng, data, msgs)
                how = rng.randrange(3)

                def change(path, user):
                    st = os.stat(path)
                    if how == 0:
                        tmp = path + ".new"
                        pt.write_mailbox(tmp, data, user)
                        os.rename(tmp, path)
                    else:
                        self.rewrite(data, user)
                    if how == 2:
                        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
                self.both(change)
            self.parallel()
            hows[self._how] = hows.get(self._how, 0) + 1
        # the index was used, not only rebuilt
        self.assertGreater(hows.get("grown", 0), self.ROUNDS // 10, hows)
        self.assertGreater(hows.get("unchanged", 0), self.ROUNDS // 10, hows)

    @staticmethod
    def changed(rng, data, msgs):
        """What another program makes of the mailbox."""
        kind = rng.randrange(4)
        if kind == 0:      # a Status: header added to one
            lf = data.find(b"\n", msgs[rng.randrange(len(msgs))].start) + 1
            if lf > 0:
                data = data[:lf] + b"Status: RO\n" + data[lf:]
        elif kind == 1:    # one removed
            m = msgs[rng.randrange(len(msgs))]
            data = data[:m.start] + data[m.end:]
        elif kind == 2:    # truncated, never inside the first "From "
            cut = rng.randrange(len(data) + 1)
            data = data[:cut if cut >= 5 else 0]
        else:              # same size, a byte changed
            i = data.find(b"line ", rng.randrange(len(data) + 1))
            if i < 0:
                i = data.find(b"line ")
            if i >= 0:
                data = data[:i] + b"LINE " + data[i + 5:]
        return data


class MaildirIndex(IndexTest):
    """The Maildir index: a file whose name and inode match is not read
    again; everything else is, and the answers are -i none's."""

    def setUp(self):
        super().setUp()
        md = os.path.join(self.spool, "alice")
        for d in ("", "new", "cur", "tmp"):
            os.makedirs(os.path.join(md, d), exist_ok=True)
            os.chmod(os.path.join(md, d), 0o700)
            os.chown(os.path.join(md, d), pt.uid_of("alice"), pt.USERS["alice"][2])
        self.md = md
        self.seq = 0

    def default_args(self, cleartext=True, timeout=30, maildrop=None):
        return super().default_args(cleartext, timeout,
                                    maildrop or os.path.join(self.spool, "%u") + "/")

    def deliver(self, data, sub="new", name=None):
        if name is None:
            self.seq += 1
            name = "%d.M%dP%d.host" % (1700000000 + self.seq, self.seq, os.getpid())
        tmp = os.path.join(self.md, "tmp", name)
        pt.write_mailbox(tmp, data)
        os.rename(tmp, os.path.join(self.md, sub, name))
        return name

    def known(self, want=None):
        """The index server answers as -i none does; returns (files the
        index spared reading, files)."""
        got, _ = self.session(self.ix)
        line = self.how()
        want_, _ = self.session(self.none)
        self.assertEqual(got, want_)
        with open(self.ix.log_path, "rb") as f:
            text = f.read().decode("latin-1")
        m = re.findall(r"index used mailbox=\S+ how=known:(\d+)/(\d+)", text)
        self.assertTrue(m, text)
        k = tuple(int(x) for x in m[-1])
        if want is not None:
            self.assertEqual(k, want)
        return k

    def test_maildir_changes(self):
        names = [self.deliver(message(n)[message(n).index(b"\n") + 1:])
                 for n in range(1, 6)]
        self.known((0, 5))
        self.known((5, 5))
        self.deliver(message(6))
        self.known((5, 6))
        # pop3d marked them seen in cur/; an IMAP client flags one: a new
        # name, read again
        cur = os.path.join(self.md, "cur")
        os.rename(os.path.join(cur, names[0] + ":2,S"),
                  os.path.join(cur, names[0] + ":2,FS"))
        self.known((5, 6))
        self.known((6, 6))
        # another program expunges one
        os.unlink(os.path.join(cur, names[1] + ":2,S"))
        self.known((5, 5))
        # one replaced by rename under the same name: another inode
        self.deliver(message(9, body_lines=7), sub="cur", name=names[2] + ":2,S")
        self.known((4, 5))
        # pop3d deletes one and marks the others seen
        _, reply = self.session(self.ix, dele=(2,))
        self.how()
        self.assertTrue(reply.startswith(b"+OK"), reply)
        self.known()
        self.known((4, 4))

    def test_maildir_damaged_index(self):
        for n in range(1, 4):
            self.deliver(message(n))
        self.known((0, 3))
        good = pt.read_file(self.index_file())
        for off in (0, 12, 40, len(good) // 2, len(good) - 1):
            bad = bytearray(good)
            bad[off] ^= 0x01
            with open(self.index_file(), "wb") as f:
                f.write(bytes(bad))
            self.known((0, 3))
        # an mbox index for a Maildir, and the other way round: no index
        old = bytearray(good)
        struct.pack_into("<I", old, 12, 1)
        with open(self.index_file(), "wb") as f:
            f.write(seal(bytes(old)))
        self.known((0, 3))
        self.known((3, 3))
