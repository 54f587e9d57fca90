"""The session path under valgrind: every process of a real session, plain
and over TLS, with no memory error and no definite leak.  valgrind cannot
run under the processes' seccomp filters, so this uses the test build with
its sandbox switched off (POP3D_TEST_NO_SANDBOX); the normal binary has no
such switch."""

import os
import shutil
import subprocess
import time

import pop3test
from pop3test import (Pop3TestCase, plain_mbox, tricky_mbox, password,
                      read_file, TOP_DIR)

CRASHTEST = os.path.join(TOP_DIR, "pop3d-crashtest")
VALGRIND = ["valgrind", "-q", "--trace-children=yes", "--vgdb=no",
            "--error-exitcode=99", "--leak-check=full",
            "--errors-for-leak-kinds=definite", "--track-fds=no"]


def valgrind_errors(text):
    """valgrind's own report lines ("==PID== ..."), if any."""
    return [l for l in text.splitlines() if l.startswith("==")]


class Valgrind(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.assertIsNotNone(shutil.which("valgrind"), "valgrind is not installed")
        self.assertTrue(os.access(CRASHTEST, os.X_OK), "make pop3d-crashtest first")

    def transcript(self, lines, extra=()):
        """Runs one session on a pipe under valgrind; (stdout, stderr)."""
        env = dict(os.environ, POP3D_TEST_NO_SANDBOX="1")
        argv = VALGRIND + [CRASHTEST, "-d", "-P", "-a", self.env.passwd,
                           "-m", os.path.join(self.spool, "%u")] + list(extra)
        p = subprocess.run(argv, input="".join(l + "\r\n" for l in lines).encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=env, timeout=300)
        err = p.stderr.decode("utf-8", "replace")
        self.assertEqual(valgrind_errors(err), [], err)
        self.assertNotEqual(p.returncode, 99, err)
        self.assertIn("test build: no sandbox", err)
        return p.stdout.decode("latin-1"), err

    def test_transaction_commands(self):
        self.put_mbox(tricky_mbox())
        out, err = self.transcript([
            "CAPA", "USER alice", "PASS " + password("alice"), "STAT", "LIST",
            "UIDL", "LIST 2", "UIDL 3", "RETR 1", "RETR 2", "TOP 1 0",
            "TOP 3 2", "DELE 2", "RETR 2", "RSET", "DELE 1", "LIST 9",
            "NOOP", "QUIT"])
        self.assertIn("+OK pop3d signing off", out)
        self.assertIn("logout user=alice", err)
        self.assertNotIn("process killed signal=", err)

    def test_errors_and_sasl(self):
        self.put_mbox(plain_mbox(2))
        long_line = "X" * 400
        out, err = self.transcript([
            "NOOP", long_line, "USER", "PASS x", "AUTH", "AUTH CRAM-MD5",
            "AUTH PLAIN !!!!", "AUTH PLAIN", "*",
            "AUTH PLAIN AGFsaWNlAHdyb25n",
            "AUTH PLAIN " + __import__("base64").b64encode(
                b"\0alice\0" + password("alice").encode()).decode(),
            "LIST 4294967297", "TOP 1 x", "DELE 2", "QUIT"])
        self.assertIn("-ERR [AUTH] invalid user name or password", out)
        self.assertIn("+OK maildrop has 2 messages", out)
        self.assertIn("+OK pop3d signing off (1 message left)", out)

    def test_stls_session(self):
        # TLS through socket activation: the session's libtls path too
        d = self.env.new_dir("tls")
        key, cert = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                        "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-keyout", key, "-out", cert], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.chmod(key, 0o600)
        self.put_mbox(plain_mbox(2))
        port = pop3test.free_port()
        log = os.path.join(self.logdir, "valgrind-tls.log")
        argv = (["systemd-socket-activate", "--accept", "--inetd",
                 "-E", "POP3D_TEST_NO_SANDBOX=1",
                 "-l", "127.0.0.1:%d" % port] + VALGRIND +
                [CRASHTEST, "-d", "-a", self.env.passwd, "-c", cert, "-k", key,
                 "-m", os.path.join(self.spool, "%u")])
        with open(log, "wb") as lf:
            sa = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=lf)
        try:
            deadline = time.monotonic() + 10
            while not pop3test.listening(port):
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            cmds = "USER alice\r\nPASS %s\r\nRETR 1\r\nQUIT\r\n" % password("alice")
            p = subprocess.run(["openssl", "s_client", "-quiet", "-starttls",
                                "pop3", "-connect", "127.0.0.1:%d" % port],
                               input=cmds.encode(), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, timeout=120)
            out = p.stdout.decode("latin-1")
            self.assertIn("+OK pop3d signing off", out)
            deadline = time.monotonic() + 60
            text = ""
            while "died with code" not in text and time.monotonic() < deadline:
                time.sleep(0.2)
                text = read_file(log).decode("utf-8", "replace")
        finally:
            sa.terminate()
            sa.wait(10)
        self.assertIn("TLSv1.3", text)
        self.assertEqual(valgrind_errors(text), [], text)
        self.assertRegex(text, r"died with code 0")
