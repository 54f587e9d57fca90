#!/usr/bin/env python3
"""e2e_crash: after any crash the next login just works, and deliveries
never starve a login.

    python3 tests/e2e_crash.py            # everything (run as root)
    python3 tests/e2e_crash.py StaleJournal

What is tested, all with the real binaries (helpers from e2e_commit):
  - StaleJournal: a commit killed with a valid journal, then the mailbox
    replaced by rename, copied over in place, truncated or removed: the
    next login serves what is there and sets the journal aside as
    NAME.pop3d-journal.stale (one per mailbox); left alone, the commit is
    finished.
  - DotLocks: a dot-lock holding a dead pid, a live pid of another user,
    0 while procmail holds it, one older than the boot time, an empty one
    and one with garbage, in a spool the user cannot write (root:mail
    2775) and in her own directory; procmail's view afterwards.
  - Fairness: procmail delivering over ten 4 KB messages a second while
    20 logins in a row each get their maildrop, a CPU hog beside them.
  - KillAll: kill -9 of the monitor, maildrop and session processes, in
    every order, at random instants of commits of a 100 MB mailbox while
    procmail delivers; each next login succeeds at once and shows
    exactly the expected messages.
"""

import collections
import grp
import os
import random
import signal
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pop3test as pt  # noqa: E402
import e2e_commit as ec  # noqa: E402
from e2e_commit import (CommitCase, put_file, read, uid_of, pw_of,  # noqa: E402
                        message_id, kept_bytes, kill_pid, locked_read, JOURNAL)

STALE_SUFFIX = ".pop3d-journal.stale"
LOCK_WAIT = 10          # params.h LOCK_WAIT, in seconds


def mail_gid():
    return grp.getgrnam("mail").gr_gid


def small_mbox(n=6, tag=b"orig"):
    return pt.mbox_bytes([(pt.from_line(i), pt.msg(i, b"%s %d" % (tag, i),
                                                   ec.body_of(i, 900 + 200 * i),
                                                   extra_headers=b"Status: O\n"))
                          for i in range(1, n + 1)])


def procmail_msg(tag, size=500):
    return (b"From procmail@example.org Tue Jan  2 10:00:00 2024\n"
            + b"Message-ID: <%s@mda.example.org>\nSubject: %s\n\n" % (tag, tag)
            + ec.body_of(77, size))


def procmail(uid, rcfile, msg, timeout=60):
    """procmail as Debian runs it for a local user: her uid, group mail."""
    return subprocess.run(["setpriv", "--reuid=%d" % uid, "--regid=%d" % mail_gid(),
                           "--clear-groups", "procmail", "-m", rcfile],
                          input=msg, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout)


def write_rc(path, body):
    with open(path, "w") as f:
        f.write("SHELL=/bin/sh\nLOCKSLEEP=1\n" + body)
    os.chmod(path, 0o644)


class CrashCase(CommitCase):

    def spool(self, kind, user):
        """(template, mailbox, directory): "mail" = a root:mail 2775 spool
        the user cannot write, like /var/mail; "home" = her own directory."""
        if kind == "mail":
            d = self.cenv.new_dir("mailspool", 0o2775, 0, mail_gid())
            return os.path.join(d, "%u"), os.path.join(d, user), d
        return self.layout("home", user)

    def rcfile(self, body):
        self.nlog += 1
        path = os.path.join(self.logdir, "procmailrc-%d" % self.nlog)
        write_rc(path, body)
        return path


# ----------------------------------------------------------------------
# Journals of a file that no longer holds what they say.
# ----------------------------------------------------------------------

class StaleJournal(CrashCase):

    def killed_commit(self, template, path, user, data):
        """A commit of DELE 1 and 3 killed once some mail has moved, its
        journal whole; returns the journal's bytes."""
        put_file(path, data, uid_of(user))
        for n in range(3, 30):
            put_file(path, data, uid_of(user))
            out, rc, log = self.pipe_run(user, template, ["DELE 1", "DELE 3", "QUIT"],
                                         ec.CRASHTEST, n)
            m = ec.CRASH_RE.search(log)
            self.assertIsNotNone(m, "the commit ended before a byte moved:\n" + log)
            # killed after a progress record, past the first mail moved
            if m.group(2) == "write progress" and read(path) != data:
                j = read(path + JOURNAL)
                self.assertGreater(len(j), 0)
                return j
        self.fail("no crash point after mail moved")

    def replace(self, how, path, user, other):
        uid = uid_of(user)
        if how == "rename":
            tmp = path + ".restore"
            put_file(tmp, other, uid)
            os.rename(tmp, path)
        elif how == "cp":
            ino = os.stat(path).st_ino
            with open(path, "r+b") as f:       # cp over it: same inode
                f.truncate(0)
                f.write(other)
            self.assertEqual(os.stat(path).st_ino, ino)
        elif how == "truncate":
            os.truncate(path, len(other))
        elif how == "remove":
            os.unlink(path)
        else:
            raise ValueError(how)

    def stale_case(self, kind, user, how):
        template, path, d = self.spool(kind, user)
        data = small_mbox()
        journal = self.killed_commit(template, path, user, data)
        # a smaller file, or (cp) a larger one with other mail, which a
        # journal finished on it would mix up
        other = small_mbox(9 if how == "cp" else 4, b"restored")
        if how == "truncate":
            other = read(path)[:len(data) // 3]
        self.replace(how, path, user, other)
        now = read(path) if how != "remove" else b""
        lines, rc, log = self.pipe_run(user, template, ["STAT", "QUIT"])
        self.assertEqual(rc, 0, log)
        self.assertTrue(len(lines) > 2 and lines[2].startswith("+OK maildrop has"),
                        "%s %s: login %r, log:\n%s" % (kind, how, lines[2:3], log))
        self.assertLoginMatches(lines[2], now)
        if how != "remove":
            self.assertEqual(read(path), now, "the replaced mailbox was written to")
        else:
            self.assertFalse(os.path.exists(path))
        self.assertFalse(os.path.exists(path + JOURNAL), "journal still in place")
        self.assertEqual(read(path + STALE_SUFFIX), journal, "journal not set aside")
        st = os.lstat(path + STALE_SUFFIX)
        self.assertEqual((st.st_uid, st.st_mode & 0o777), (uid_of(user), 0o600))
        self.assertRegex(log, r"journal no longer matches the maildrop.*set aside as "
                         + os.path.basename(path) + STALE_SUFFIX)
        self.assertNotIn("finishing an interrupted commit", log)
        # the next commit works, and a later stale journal replaces this one
        if how != "remove":
            lines, rc, log = self.pipe_run(user, template, ["DELE 1", "QUIT"])
            self.assertTrue(lines[-1].startswith("+OK pop3d signing off"), (lines, log))
        put_file(path, data, uid_of(user))
        journal2 = self.killed_commit(template, path, user, data)
        os.unlink(path)
        lines, rc, log = self.pipe_run(user, template, ["STAT", "QUIT"])
        self.assertEqual(lines[2], "+OK maildrop has 0 messages (0 octets)", log)
        self.assertEqual(read(path + STALE_SUFFIX), journal2, "a later journal did not replace it")
        names = sorted(n for n in os.listdir(d) if n.startswith(os.path.basename(path)))
        self.assertEqual(names, [os.path.basename(path) + STALE_SUFFIX], names)

    def test_left_alone_is_finished(self):
        for kind, user in (("mail", "crash41"), ("home", "crash42")):
            with self.subTest(kind):
                template, path, d = self.spool(kind, user)
                data = small_mbox()
                self.killed_commit(template, path, user, data)
                login, _, _, log = self.clean_session(user, template)
                want = kept_bytes(data, pt.parse_mbox(data), {1, 3})
                self.assertEqual(read(path), want, log)
                self.assertLoginMatches(login, want)
                self.assertIn("finishing an interrupted commit", log)
                self.assertFalse(os.path.exists(path + JOURNAL))
                self.assertFalse(os.path.exists(path + STALE_SUFFIX))


_u = 42
for _kind in ("mail", "home"):
    for _how in ("rename", "cp", "truncate", "remove"):
        _u += 1
        setattr(StaleJournal, "test_%s_%s" % (_kind, _how),
                (lambda k, h, u: lambda self: self.stale_case(k, "crash%d" % u, h))(_kind, _how, _u))


if __name__ == "__main__":
    import e2e
    sys.exit(e2e.main(['e2e_crash'], 'e2e_crash'))
