#!/usr/bin/env python3
"""End-to-end tests of pop3d's TLS and SASL part (issue 3).

    python3 tests/e2e_tls.py              # everything (about 70 s, 30 of
                                          # them the handshake-timeout test)
    python3 tests/e2e_tls.py -v           # one line per test
    python3 tests/e2e_tls.py Sasl         # some classes or tests

STLS and implicit TLS (-S) with real clients (openssl s_client, Python's
poplib, curl, mpop, fetchmail), STLS command injection, AUTH PLAIN
(RFC 4616, RFC 5034), the cleartext login policy (-P), the TLS settings
(protocol versions, key file mode, -n), the login log line, hostile
handshakes (garbage, a stall), and a large message over TLS.

Builds on the harness of the other end-to-end tests (tests/pop3test.py:
the environment, the server, the raw client, the mbox reference); what
only these tests need (certificates, users with SASL test vectors, TLS
wrapping) is here.  Ends with "e2e_tls: N passed, N failed" on stdout and
exits 1 if anything failed.  Must run as root.  E2E_LOG=1 prints each
server's log after its test; E2E_KEEP=1 keeps the temporary directory.
"""

import base64
import os
import poplib
import re
import select
import shutil
import socket
import ssl
import subprocess
import sys
import time
import unittest
import warnings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pop3test as pt  # noqa: E402
from pop3test import Pop3TestCase, parse_mbox, plain_mbox, tricky_mbox  # noqa: E402

AUTH_FAIL = "-ERR [AUTH] invalid user name or password"
AUTH_FINAL = "-ERR [AUTH] too many failed logins"
BAD_B64 = "-ERR invalid base64 in AUTH response"
BAD_PLAIN = "-ERR [AUTH] invalid SASL PLAIN response"
REFUSED_STLS = "-ERR cleartext login refused, use STLS first"
REFUSED_NO_TLS = "-ERR cleartext login refused, TLS is not configured"
STLS_OK = "+OK begin TLS negotiation"
KEY_MODE_MSG = "key file must not be accessible by group or others"

# The RFC 4616 section 4 example: authcid tim, password tanstaaftanstaaf.
TIM_PW = "tanstaaftanstaaf"
TIM_VECTOR = "AHRpbQB0YW5zdGFhZnRhbnN0YWFm"

# Users these tests add to a passwd file of their own (the harness's users
# plus these): name -> (password, uid).
EXTRA_USERS = {
    "tina": ("tina-pw-2236", 63000),
    "tim": (TIM_PW, 63001),
    # "\0pat\0" + password is 16 octets: its base64 ends in "==", which
    # the padding-bits test needs
    "pat": ("pat-secret1", 63002),
    # a password of exactly 255 octets (the SASL PLAIN field limit)
    "lp": (("long-password-" * 19)[:255], 63003),
}

CAPA_BEFORE_TLS = ["TOP", "STLS", "UIDL", "PIPELINING", "RESP-CODES",
                   "AUTH-RESP-CODE"]
CAPA_LOGIN_OK = ["TOP", "USER", "SASL PLAIN", "UIDL", "PIPELINING", "RESP-CODES",
                 "AUTH-RESP-CODE"]
CAPA_CLEARTEXT_TLS = ["TOP", "USER", "SASL PLAIN", "STLS", "UIDL", "PIPELINING",
                      "RESP-CODES", "AUTH-RESP-CODE"]
CAPA_NOTHING = ["TOP", "UIDL", "PIPELINING", "RESP-CODES", "AUTH-RESP-CODE"]
# RFC 2449 section 5: after login, what AUTHORIZATION offered (the login
# was allowed, so USER and SASL PLAIN), never STLS (RFC 2595), and the
# IMPLEMENTATION, told only to a logged-in user.
CAPA_TRANSACTION = CAPA_LOGIN_OK + ["IMPLEMENTATION pop3d-" + pt.VERSION]


def capa_after_login(before):
    """What CAPA must list after a login on a connection whose last CAPA
    before login listed before."""
    return [c for c in before if c != "STLS"] + ["IMPLEMENTATION pop3d-" + pt.VERSION]


def pw(user):
    return EXTRA_USERS[user][0]


def b64(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.b64encode(data).decode()


def plain(authcid, pw, authzid=""):
    """A SASL PLAIN response in base64."""
    return b64(authzid.encode() + b"\0" + authcid.encode() + b"\0" + pw.encode())


def tamper_pad_bits(enc):
    """The same base64 with a non-zero bit in the padding bits: a lenient
    decoder gives the same octets, a strict one refuses it."""
    assert enc.endswith("=")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    i = len(enc.rstrip("=")) - 1
    v = alphabet.index(enc[i])
    assert v & 1 == 0
    return enc[:i] + alphabet[v | 1] + enc[i + 1:]


def lf_message(m):
    """A message as a client that stores LF line ends writes it."""
    return m.crlf.replace(b"\r\n", b"\n")


def big_mbox(target=5 * 1024 * 1024, long_lines=True):
    """One message of about target octets, with dot lines, >From lines and
    (unless not long_lines) some 5000-octet lines."""
    head = (b"Message-ID: <big@example.org>\nFrom: big@example.org\n"
            b"To: tina@example.org\nSubject: five megabytes\n\n")
    lines = []
    n = 0
    size = len(head)
    while size < target:
        n += 1
        if n % 97 == 0:
            line = b".dot line %d\n" % n
        elif n % 89 == 0:
            line = b">From quoted %d\n" % n
        elif n % 1009 == 0 and long_lines:
            line = b"x" * 5000 + b"\n"
        else:
            line = b"%08d the quick brown fox jumps over the lazy dog 0123456789\n" % n
        lines.append(line)
        size += len(line)
    return pt.mbox_bytes([(pt.from_line(1), head + b"".join(lines))])


# ----------------------------------------------------------------------
# Certificates, keys and the passwd file, made once per run.
# ----------------------------------------------------------------------

def openssl(*args, **kw):
    return subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, **kw)


class TlsFiles:
    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = TlsFiles(pt.Env.get())
        return cls._instance

    def __init__(self, env):
        self.env = env
        d = self.dir = env.new_dir("tls", 0o755)
        p = lambda name: os.path.join(d, name)  # noqa: E731
        # the server's pair: self-signed, names localhost and 127.0.0.1
        self.key, self.cert = p("key.pem"), p("cert.pem")
        self.self_signed(self.key, self.cert, "localhost", 30)
        # another pair, for a mismatched certificate and key
        self.key2, self.cert2 = p("key2.pem"), p("cert2.pem")
        self.self_signed(self.key2, self.cert2, "other", 30)
        # a certificate for self.key that expired long ago
        self.expired = p("expired.pem")
        self.signed_with_dates(self.key, self.expired, "20200101000000Z", "20200201000000Z")
        # a file that is no certificate, a directory
        self.garbage = p("garbage.pem")
        with open(self.garbage, "w") as f:
            f.write("this is not a certificate\n")
        self.a_dir = p("a-directory.pem")
        os.mkdir(self.a_dir)
        # the passwd file: the harness's users plus tim, pat, lp
        with open(env.passwd) as f:
            lines = f.read().splitlines()
        for name, (pw, uid) in EXTRA_USERS.items():
            home = os.path.join(env.homes, name)
            os.makedirs(home, 0o700, exist_ok=True)
            os.chown(home, uid, uid)
            lines.append("%s:%s:%d:%d:%s:%s:/bin/sh"
                         % (name, pt.sha512_hash(pw), uid, uid, name.title(), home))
        self.passwd = p("passwd")
        with open(self.passwd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.passwd, 0o600)

    def self_signed(self, key, cert, cn, days):
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-keyout", key, "-out", cert, "-subj", "/CN=" + cn,
                "-addext", "subjectAltName=DNS:%s,IP:127.0.0.1" % cn, "-days", str(days))
        os.chmod(key, 0o600)

    def signed_with_dates(self, key, cert, start, end):
        """A self-signed certificate for key with the given dates
        (openssl ca can set dates in the past; req and x509 cannot in
        OpenSSL 3.0)."""
        ca = os.path.join(self.dir, "ca-" + os.path.basename(cert))
        os.mkdir(ca)
        conf = os.path.join(ca, "ca.cnf")
        with open(conf, "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\n"
                    "new_certs_dir = %s\nserial = %s/serial\ndefault_md = sha256\n"
                    "policy = p\ncopy_extensions = copy\nunique_subject = no\n"
                    "[p]\ncommonName = supplied\n" % (ca, ca, ca))
        open(os.path.join(ca, "index.txt"), "w").close()
        with open(os.path.join(ca, "serial"), "w") as f:
            f.write("01\n")
        csr = os.path.join(ca, "req.csr")
        openssl("req", "-new", "-key", key, "-subj", "/CN=localhost", "-out", csr)
        openssl("ca", "-batch", "-notext", "-config", conf, "-selfsign", "-keyfile", key,
                "-in", csr, "-startdate", start, "-enddate", end, "-out", cert)

    def key_copy(self, mode):
        """A copy of the server key with the given mode."""
        path = os.path.join(self.dir, "key-%04o.pem" % mode)
        shutil.copyfile(self.key, path)
        os.chmod(path, mode)
        return path


# ----------------------------------------------------------------------
# The base class.
# ----------------------------------------------------------------------

class TlsCase(Pop3TestCase):

    def setUp(self):
        super().setUp()
        self.tls = TlsFiles.get()
        self.helpers = []       # other processes a test starts (by PID)

    def tearDown(self):
        for p in self.helpers:
            if p.poll() is None:
                p.kill()
            p.wait()
        super().tearDown()

    # servers ----------------------------------------------------------

    def tls_server(self, implicit=False, cleartext=False, tls=True, key=None,
                   cert=None, timeout=60):
        args = ["-a", self.tls.passwd, "-t", str(timeout),
                "-m", os.path.join(self.spool, "%u")]
        if tls:
            args += ["-c", cert or self.tls.cert, "-k", key or self.tls.key]
        if implicit:
            args.append("-S")
        if cleartext:
            args.append("-P")
        return self.server(args)

    def put_user_mbox(self, user, data):
        if user in EXTRA_USERS:
            path = self.mbox_path(user)
            with open(path, "wb") as f:
                f.write(data)
            uid = EXTRA_USERS[user][1]
            os.chown(path, uid, uid)
            os.chmod(path, 0o600)
            return parse_mbox(data)
        return self.put_mbox(data, user)

    # TLS --------------------------------------------------------------

    def context(self, **kw):
        """A client context that verifies the test certificate and its
        name (127.0.0.1)."""
        ctx = ssl.create_default_context(cafile=self.tls.cert)
        for k, v in kw.items():
            setattr(ctx, k, v)
        return ctx

    def wrap(self, c, ctx=None):
        """Shakes hands over the raw client's socket."""
        self.assertEqual(c.buf, b"", "data left unread before the TLS handshake")
        c.sock = (ctx or self.context()).wrap_socket(c.sock, server_hostname="127.0.0.1")
        return c.sock

    def stls(self, c, ctx=None):
        self.assertEqual(c.cmd("STLS"), STLS_OK)
        return self.wrap(c, ctx)

    def connect_tls(self, srv=None, ctx=None):
        """A raw client of an implicit-TLS server, after the greeting."""
        c = self.connect(srv, greeting=False)
        self.wrap(c, ctx)
        g = c.readline()
        self.assertTrue(g.startswith(pt.GREETING), "greeting: %r" % g)
        return c

    def capa(self, c):
        status, lines = c.multi("CAPA")
        self.assertEqual(status, "+OK capability list follows")
        return lines

    def read_to_close(self, c, timeout=15.0):
        """Everything the server sends until it closes: (data, closed)."""
        c.sock.settimeout(timeout)
        data, c.buf = c.buf, b""
        try:
            while True:
                chunk = c.sock.recv(65536)
                if not chunk:
                    return data, True
                data += chunk
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            return data, True
        except socket.timeout:
            return data, False

    def nothing_pending(self, c, wait=0.3):
        """True if the server sent nothing more within wait seconds."""
        r, _, _ = select.select([c.sock], [], [], wait)
        return not r and c.buf == b""

    def login_log(self, srv, user):
        """"ADDR TLS" of each login line of user."""
        m = re.findall(r"(?m)\[monitor\] login user=%s tls=(\S+) from=(\S+)$" % re.escape(user),
                       srv.log())
        return ["%s %s" % (addr, tls) for tls, addr in m]

    def assertCleanExit(self, srv, count=None):
        """No pop3d process left, every monitor exited with code 0 (none
        died of a signal)."""
        self.assertTrue(srv.wait_idle(10), "pop3d processes left: %s" % srv.pids())
        log = srv.log()
        spawned = re.findall(r"Spawned \S+ .* as PID (\d+)", log)
        died = dict(re.findall(r"Child (\d+) died with (.*)", log))
        if count is not None:
            self.assertEqual(len(spawned), count, log)
        self.assertTrue(spawned, log)
        for pid in spawned:
            self.assertEqual(died.get(pid, "").strip(), "code 0",
                             "monitor %s did not exit 0:\n%s" % (pid, log))
        self.assertNotRegex(log, r"(?i)signal|segfault|core dumped|fatal", log)

    # processes --------------------------------------------------------

    def run_tool(self, argv, input=None, timeout=90, env=None):
        return subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=timeout, env=env)

    def check_config(self, *args):
        """pop3d -n with the test passwd file: (exit status, stderr); the
        verdict on stdout agrees with the exit status."""
        p = self.run_tool([pt.POP3D, "-n", "-a", self.tls.passwd] + list(args), timeout=30)
        self.assertEqual(p.stdout, b"configuration OK\n" if p.returncode == 0
                         else b"configuration has errors\n", p.stderr)
        return p.returncode, p.stderr.decode("utf-8", "replace")


# ----------------------------------------------------------------------
# Real clients over STLS and implicit TLS: the server runs without -P, so
# a login works only over TLS.
# ----------------------------------------------------------------------

class RealClients(TlsCase):

    def setUp(self):
        super().setUp()
        self.data = tricky_mbox()
        self.msgs = self.put_user_mbox("tina", self.data)

    def expected_session(self, msgs):
        """What USER, PASS, LIST, RETR of each message and QUIT get back."""
        out = b"+OK send PASS\r\n"
        out += b"+OK maildrop has %s (%d octets)\r\n" % (
            pt.messages(len(msgs)).encode(), sum(m.size for m in msgs))
        out += b"+OK %s (%d octets)\r\n" % (pt.messages(len(msgs)).encode(),
                                            sum(m.size for m in msgs))
        out += b"".join(b"%d %d\r\n" % (i + 1, m.size) for i, m in enumerate(msgs)) + b".\r\n"
        for m in msgs:
            out += b"+OK %d octets\r\n" % m.size + m.wire
        out += b"+OK pop3d signing off (%s left)\r\n" % pt.messages(len(msgs)).encode()
        return out

    def s_client(self, implicit):
        srv = self.tls_server(implicit=implicit)
        cmds = "USER tina\nPASS %s\nLIST\n" % pw("tina")
        cmds += "".join("RETR %d\n" % (i + 1) for i in range(len(self.msgs))) + "QUIT\n"
        argv = ["openssl", "s_client", "-quiet", "-crlf", "-connect",
                "127.0.0.1:%d" % srv.port, "-CAfile", self.tls.cert,
                "-verify_return_error", "-verify_ip", "127.0.0.1"]
        if not implicit:
            argv += ["-starttls", "pop3"]
        p = self.run_tool(argv, input=cmds.encode(), timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        expect = self.expected_session(self.msgs)
        if implicit:
            expect = b"+OK pop3d ready\r\n" + expect
        self.assertEqual(p.stdout, expect)
        self.assertTrue(srv.wait_idle())
        self.assertRegex(srv.log(), r"(?m)\[monitor\] login user=tina tls=TLSv1\.3/\S+ from=127\.0\.0\.1$")
        self.assertEqual(pt.read_file(self.mbox_path("tina")), self.data)

    def test_openssl_s_client_starttls(self):
        self.s_client(implicit=False)

    def test_openssl_s_client_implicit(self):
        self.s_client(implicit=True)

    def poplib_session(self, p):
        self.assertIsInstance(p.sock, ssl.SSLSocket)
        p.user("tina")
        p.pass_(pw("tina"))
        self.assertEqual(p.stat(), (len(self.msgs), sum(m.size for m in self.msgs)))
        for i, m in enumerate(self.msgs):
            resp, lines, octets = p.retr(i + 1)
            self.assertEqual(resp, b"+OK %d octets" % m.size)
            self.assertEqual(b"".join(l + b"\r\n" for l in lines), m.crlf,
                             "message %d" % (i + 1))
        self.assertEqual(p.quit(), b"+OK pop3d signing off (12 messages left)")

    def test_poplib_stls(self):
        srv = self.tls_server()
        p = poplib.POP3("127.0.0.1", srv.port, timeout=15)
        self.assertIn("STLS", p.capa())
        self.assertEqual(p.stls(context=self.context()), b"+OK begin TLS negotiation")
        self.poplib_session(p)

    def test_poplib_pop3_ssl(self):
        srv = self.tls_server(implicit=True)
        p = poplib.POP3_SSL("127.0.0.1", srv.port, timeout=15, context=self.context())
        self.assertTrue(p.getwelcome().startswith(b"+OK pop3d ready"))
        self.poplib_session(p)

    def curl(self, scheme, path, *args):
        srv = self.srv
        self.assertTrue(srv.wait_idle())
        url = "%s://tina:%s@127.0.0.1:%d/%s" % (scheme, pw("tina"), srv.port, path)
        p = self.run_tool(["curl", "-s", "-S", "--max-time", "30", "--cacert", self.tls.cert]
                          + list(args) + [url], timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def curl_all(self, scheme, *args):
        listing = self.curl(scheme, "", *args)
        self.assertEqual(listing, b"".join(b"%d %d\r\n" % (i + 1, m.size)
                                           for i, m in enumerate(self.msgs)))
        for i, m in enumerate(self.msgs):
            self.assertEqual(self.curl(scheme, str(i + 1), *args), m.crlf,
                             "message %d" % (i + 1))
        self.assertTrue(self.srv.wait_idle())
        self.assertEqual(len(re.findall(r"(?m)login user=tina tls=TLSv1\.[23]/\S+ from=127\.0\.0\.1$",
                                        self.srv.log())), len(self.msgs) + 1)

    def test_curl_ssl_reqd_starttls(self):
        self.tls_server()
        self.curl_all("pop3", "--ssl-reqd")

    def test_curl_pop3s(self):
        self.tls_server(implicit=True)
        self.curl_all("pop3s")


class MailClients(TlsCase):
    """mpop and fetchmail, which store what they fetch."""

    def setUp(self):
        super().setUp()
        self.data = plain_mbox(4) + (b"From dots@example.org Tue Jan  2 10:00:00 2024\n"
                                     b"Subject: dots\n\n.one\n..two\n.\nend\n\n")
        self.msgs = self.put_user_mbox("tina", self.data)
        self.work = self.env.new_dir("client", 0o700)

    def check_fetched(self, got, ordered=True):
        want = [lf_message(m) for m in self.msgs]
        got = [pt.strip_received(g) for g in got]
        if not ordered:
            got, want = sorted(got), sorted(want)
        self.assertEqual(len(got), len(want))
        for i, (g, w) in enumerate(zip(got, want)):
            self.assertEqual(g, w, "message %d" % (i + 1))

    def mpop(self, srv, starttls, auth):
        maildir = os.path.join(self.work, "Maildir")
        for d in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(maildir, d))
        conf = os.path.join(self.work, "mpoprc")
        with open(conf, "w") as f:
            f.write("account test\nhost 127.0.0.1\nport %d\ntls on\ntls_starttls %s\n"
                    "tls_trust_file %s\nauth %s\nuser tina\npassword %s\n"
                    "delivery maildir %s\nkeep on\nuidls_file %s\ntimeout 30\n"
                    % (srv.port, "on" if starttls else "off", self.tls.cert, auth,
                       pw("tina"), maildir, os.path.join(self.work, "uidls")))
        os.chmod(conf, 0o600)
        p = self.run_tool(["mpop", "-C", conf, "test"], timeout=120,
                          env=dict(os.environ, HOME=self.work))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(srv.wait_idle())
        new = os.path.join(maildir, "new")
        self.check_fetched([pt.read_file(os.path.join(new, n)) for n in os.listdir(new)],
                           ordered=False)
        self.assertRegex(srv.log(), r"(?m)login user=tina tls=TLSv1\.[23]/\S+ from=127\.0\.0\.1$")
        self.assertEqual(pt.read_file(self.mbox_path("tina")), self.data)

    def test_mpop_starttls_user(self):
        self.mpop(self.tls_server(), starttls=True, auth="user")

    def test_mpop_implicit_sasl_plain(self):
        self.mpop(self.tls_server(implicit=True), starttls=False, auth="plain")

    def fetchmail(self, srv, implicit):
        out = os.path.join(self.work, "out")
        os.mkdir(out)
        mda = os.path.join(self.work, "mda.sh")
        with open(mda, "w") as f:
            f.write('#!/bin/sh\nn=$(ls "%s" | wc -l)\nexec cat > "%s/$(printf %%04d $n)"\n'
                    % (out, out))
        os.chmod(mda, 0o755)
        rc = os.path.join(self.work, "fetchmailrc")
        # sslcertck with the test certificate as the only trust anchor;
        # fetchmail matches only DNS names, never the IP address entry,
        # hence sslcommonname (the certificate names localhost)
        with open(rc, "w") as f:
            f.write('set no bouncemail\n'
                    'poll 127.0.0.1 with proto POP3 port %d and options no dns\n'
                    '  user "tina" there with password "%s" is "root" here\n'
                    '  options fetchall keep no rewrite\n'
                    '  %s sslcertck sslcertfile "%s" sslcommonname localhost\n'
                    '  mda "%s"\n'
                    % (srv.port, pw("tina"),
                       "ssl" if implicit else "sslproto 'tls1.2+'", self.tls.cert, mda))
        os.chmod(rc, 0o600)
        p = self.run_tool(["fetchmail", "--nosyslog", "-v", "-f", rc, "--idfile",
                           os.path.join(self.work, "ids")], timeout=120,
                          env=dict(os.environ, HOME=self.work, FETCHMAILHOME=self.work))
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertTrue(srv.wait_idle())
        self.check_fetched([pt.read_file(os.path.join(out, n)) for n in sorted(os.listdir(out))])
        self.assertRegex(srv.log(), r"(?m)login user=tina tls=TLSv1\.[23]/\S+ from=127\.0\.0\.1$")
        self.assertEqual(pt.read_file(self.mbox_path("tina")), self.data)

    def test_fetchmail_stls(self):
        self.fetchmail(self.tls_server(), implicit=False)

    def test_fetchmail_implicit(self):
        self.fetchmail(self.tls_server(implicit=True), implicit=True)


# ----------------------------------------------------------------------
# STLS: nothing sent before the handshake counts after it (RFC 2595 4).
# ----------------------------------------------------------------------

class Pipelining(TlsCase):
    """Commands pipelined inside TLS, each in a record of its own (as
    clients send them): every one answered, in order, the answers of
    those that came together in one go, QUIT's last."""

    def setUp(self):
        super().setUp()
        self.data = plain_mbox(30)
        self.msgs = self.put_user_mbox("tina", self.data)

    def test_retr_pipelined_in_separate_records(self):
        self.tls_server()
        c = self.connect()
        self.stls(c)
        self.assertEqual(c.cmd("USER tina"), "+OK send PASS")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        n = len(self.msgs)
        for i in range(1, n + 1):
            c.send("RETR %d\r\n" % i)     # one record each
            c.send("NOOP\r\n")
        c.send("QUIT\r\n")
        for i, m in enumerate(self.msgs, 1):
            self.assertEqual(c.readline().decode(), "+OK %d octets" % m.size)
            self.assertEqual(c.read_until_dot(), m.wire, "message %d" % i)
            self.assertEqual(c.readline().decode(), "+OK")
        self.assertEqual(c.readline().decode(), "+OK pop3d signing off (%d messages left)" % n)
        data, closed = self.read_to_close(c)
        self.assertEqual((data, closed), (b"", True))


class StlsInjection(TlsCase):

    def setUp(self):
        super().setUp()
        self.msgs = self.put_user_mbox("tina", plain_mbox(2))

    def inject(self, payload):
        """Sends STLS and more in one write; returns the client after the
        handshake, checking that only the STLS reply came in clear."""
        c = self.connect()
        c.send(payload)
        self.assertEqual(c.readline().decode(), STLS_OK)
        if not self.nothing_pending(c):
            c.sock.settimeout(1)
            self.fail("more than the STLS reply in clear: %r"
                      % (c.buf + c.sock.recv(4096, socket.MSG_PEEK)))
        c.sock.settimeout(pt.IO_TIMEOUT)
        self.wrap(c)
        return c

    def test_stls_capa_one_write(self):
        self.tls_server()
        c = self.inject(b"STLS\r\nCAPA\r\n")
        # the first thing answered inside TLS is what was sent inside it
        c.send(b"QUIT\r\n")
        data, closed = self.read_to_close(c)
        self.assertEqual(data, b"+OK pop3d signing off\r\n")
        self.assertTrue(closed)

    def test_stls_capa_one_write_then_capa(self):
        self.tls_server()
        c = self.inject(b"STLS\r\nCAPA\r\n")
        self.assertEqual(self.capa(c), CAPA_LOGIN_OK)
        self.assertTrue(self.nothing_pending(c), "a second CAPA reply")
        self.quit(c)

    def test_stls_user_one_write(self):
        self.tls_server()
        c = self.inject(b"STLS\r\nUSER tina\r\n")
        self.assertEqual(c.cmd("PASS " + pw("tina")), "-ERR USER first")
        self.assertEqual(c.cmd("USER tina"), "+OK send PASS")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.quit(c, "+OK pop3d signing off (2 messages left)")

    def test_stls_login_injection_with_cleartext_allowed(self):
        # with -P the injected USER/PASS would log in if they were executed
        self.tls_server(cleartext=True)
        c = self.inject(("STLS\r\nUSER tina\r\nPASS %s\r\nSTAT\r\n"
                         % pw("tina")).encode())
        self.assertEqual(c.cmd("STAT"), "-ERR command not valid in this state")
        self.assertEqual(c.cmd("PASS " + pw("tina")), "-ERR USER first")
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")
        self.assertTrue(self.srv.wait_idle())
        self.assertNotIn("login user=tina", self.srv.log())

    def test_user_before_stls_forgotten(self):
        self.tls_server(cleartext=True)
        c = self.connect()
        self.assertEqual(c.cmd("USER tina"), "+OK send PASS")
        self.stls(c)
        self.assertEqual(c.cmd("PASS " + pw("tina")), "-ERR USER first")
        self.assertEqual(c.cmd("USER tina"), "+OK send PASS")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.quit(c)

    def test_partial_line_before_stls_discarded(self):
        # the start of a command sent with STLS must not be glued to the
        # first line sent inside TLS
        self.tls_server()
        c = self.inject(b"STLS\r\nQU")
        self.assertEqual(c.cmd("IT"), "-ERR unknown command")
        self.assertEqual(c.cmd("QUIT"), "+OK pop3d signing off")

    def test_second_stls_refused(self):
        self.tls_server()
        c = self.connect()
        self.stls(c)
        self.assertEqual(c.cmd("STLS"), "-ERR TLS already active")
        self.assertEqual(self.capa(c), CAPA_LOGIN_OK)
        self.quit(c)

    def test_stls_implicit_refused(self):
        self.tls_server(implicit=True)
        c = self.connect_tls()
        self.assertEqual(c.cmd("STLS"), "-ERR TLS already active")
        self.quit(c)

    def test_stls_in_transaction_refused(self):
        self.tls_server()
        c = self.connect()
        self.stls(c)
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.assertEqual(c.cmd("STLS"), "-ERR command not valid in this state")
        self.quit(c)


# ----------------------------------------------------------------------
# AUTH PLAIN (RFC 5034, RFC 4616), over implicit TLS.
# ----------------------------------------------------------------------

class Sasl(TlsCase):

    def setUp(self):
        super().setUp()
        self.tim = self.put_user_mbox("tim", plain_mbox(3))
        self.lp = self.put_user_mbox("lp", plain_mbox(1))
        self.pat = self.put_user_mbox("pat", plain_mbox(2))
        self.tls_server(implicit=True)

    def quick(self, c, line):
        """A reply that must come without the failure delay."""
        t0 = time.monotonic()
        r = c.cmd(line)
        self.assertLess(time.monotonic() - t0, 1.0, "%r delayed: %r" % (line, r))
        return r

    def test_rfc4616_vector_initial_response(self):
        self.assertEqual(TIM_VECTOR, plain("tim", TIM_PW))
        c = self.connect_tls()
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.assertEqual(c.cmd("STAT"), "+OK 3 %d" % sum(m.size for m in self.tim))
        self.assertEqual(c.cmd("RETR 2"), "+OK %d octets" % self.tim[1].size)
        self.assertEqual(c.read_until_dot(), self.tim[1].wire)
        self.quit(c, "+OK pop3d signing off (3 messages left)")
        self.assertRegex(self.srv.log(), r"\[monitor\] login user=tim tls=TLSv\S+ from=127\.0\.0\.1")

    def test_continuation(self):
        c = self.connect_tls()
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertLogin(c.cmd(TIM_VECTOR), self.tim)
        self.quit(c)

    def test_mechanism_name_case_insensitive(self):
        c = self.connect_tls()
        self.assertLogin(c.cmd("auth plain " + TIM_VECTOR), self.tim)
        self.quit(c)

    def test_empty_response(self):
        c = self.connect_tls()
        # "=" is an empty initial response: not a valid PLAIN message
        self.assertEqual(self.quick(c, "AUTH PLAIN ="), BAD_PLAIN)
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertEqual(self.quick(c, "="), BAD_PLAIN)
        # an empty continuation line is no valid base64 PLAIN message either
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertTrue(self.quick(c, "").startswith("-ERR"))
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.quit(c)

    def test_cancel(self):
        c = self.connect_tls()
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertEqual(self.quick(c, "*"), "-ERR AUTH cancelled")
        # back to commands: NOOP is a command again (wrong state)
        self.assertEqual(c.cmd("NOOP"), "-ERR command not valid in this state")
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertLogin(c.cmd(TIM_VECTOR), self.tim)
        self.quit(c)

    def test_cancel_is_no_failed_login(self):
        c = self.connect_tls()
        for _ in range(4):
            self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
            self.assertEqual(self.quick(c, "*"), "-ERR AUTH cancelled")
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.quit(c)

    def test_strict_base64(self):
        pat_ok = plain("pat", EXTRA_USERS["pat"][0])
        self.assertTrue(pat_ok.endswith("=="))
        bad = [
            TIM_VECTOR[:-1] + "!",            # not in the alphabet
            TIM_VECTOR[:-1],                  # length not a multiple of 4
            TIM_VECTOR + "A",
            TIM_VECTOR[:8] + "-_" + TIM_VECTOR[10:],   # base64url characters
            TIM_VECTOR[:4] + "=" + TIM_VECTOR[5:],     # "=" inside
            TIM_VECTOR + "====",              # a quantum of padding only
            pat_ok[:-3] + "===",              # three padding characters
            tamper_pad_bits(pat_ok),          # non-zero padding bits
        ]
        # the lenient reading of the last one is pat's good credentials
        self.assertEqual(base64.b64decode(bad[-1]), base64.b64decode(pat_ok))
        c = self.connect_tls()
        for b in bad:
            self.assertEqual(self.quick(c, "AUTH PLAIN " + b), BAD_B64, "AUTH PLAIN %s" % b)
        for b in (bad[0], bad[-1], "AHRpbQB0 YW5zdGFhZnRhbnN0YWFm", " " + TIM_VECTOR,
                  TIM_VECTOR + " "):
            self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
            self.assertEqual(self.quick(c, b), BAD_B64, "continuation %r" % b)
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")
        self.assertTrue(self.srv.wait_idle())
        self.assertNotIn("login user=", self.srv.log())
        self.assertNotIn("login failed", self.srv.log())

    def test_padded_base64_accepted(self):
        c = self.connect_tls()
        self.assertLogin(c.cmd("AUTH PLAIN " + plain("pat", EXTRA_USERS["pat"][0])), self.pat)
        self.quit(c)

    def test_authzid_equal_to_authcid(self):
        c = self.connect_tls()
        self.assertLogin(c.cmd("AUTH PLAIN " + plain("tim", TIM_PW, authzid="tim")), self.tim)
        self.quit(c)

    def test_authzid_different_refused(self):
        self.put_user_mbox("tina", plain_mbox(1))
        c = self.connect_tls()
        # good credentials of tim, asking to act as tina
        self.assertEqual(self.quick(c, "AUTH PLAIN " + plain("tim", TIM_PW, authzid="tina")),
                         BAD_PLAIN)
        # good credentials of tina, asking to act as tim
        self.assertEqual(self.quick(c, "AUTH PLAIN " + plain("tina", pw("tina"),
                                                             authzid="tim")), BAD_PLAIN)
        self.assertEqual(self.quick(c, "AUTH PLAIN " + plain("tim", TIM_PW, authzid="Tim")),
                         BAD_PLAIN)
        self.assertEqual(c.cmd("STAT"), "-ERR command not valid in this state")
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")
        self.assertTrue(self.srv.wait_idle())
        self.assertNotIn("login user=", self.srv.log())

    def test_structurally_bad(self):
        c = self.connect_tls()
        for msg in (b"tim" + TIM_PW.encode(),                 # no NUL
                    b"tim\0" + TIM_PW.encode(),               # one NUL
                    b"\0tim\0" + TIM_PW.encode() + b"\0",     # three NULs
                    b"\0tim\0tanstaaf\0tanstaaf",
                    b"\0\0" + TIM_PW.encode(),                # empty authcid
                    b"\0\0",
                    b"\0"):
            self.assertEqual(self.quick(c, "AUTH PLAIN " + b64(msg)), BAD_PLAIN, repr(msg))
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.quit(c)

    def test_empty_password_is_a_failed_login(self):
        c = self.connect_tls()
        t0 = time.monotonic()
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("tim", "")), AUTH_FAIL)
        self.assertGreaterEqual(time.monotonic() - t0, 1.8)
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.quit(c)

    def test_255_octet_password_in_long_continuation(self):
        pw = EXTRA_USERS["lp"][0]
        self.assertEqual(len(pw), 255)
        line = plain("lp", pw)
        self.assertGreater(len(line) + 2, 255)
        c = self.connect_tls()
        # too long for a command line ...
        self.assertEqual(self.quick(c, "AUTH PLAIN " + line), "-ERR line too long")
        # ... but fine as the continuation
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertLogin(c.cmd(line), self.lp)
        self.quit(c)

    def test_fields_over_255_refused(self):
        pw = EXTRA_USERS["lp"][0]
        c = self.connect_tls()
        for zid, cid, p in (("", "lp", pw + "x"),           # password 256
                            ("", "u" * 256, "x"),            # authcid 256
                            ("u" * 256, "u" * 256, "x"),     # authzid and authcid 256
                            ("z" * 256, "lp", pw)):          # authzid 256
            self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
            self.assertEqual(self.quick(c, plain(cid, p, authzid=zid)), BAD_PLAIN,
                             "field lengths %d %d %d" % (len(zid), len(cid), len(p)))
        self.assertEqual(c.cmd("STAT"), "-ERR command not valid in this state")
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")
        self.assertTrue(self.srv.wait_idle())
        self.assertNotIn("login user=lp", self.srv.log())
        self.assertNotIn("login failed", self.srv.log())

    def test_fields_of_255_accepted_as_plain(self):
        # a 255-octet authcid (and authzid) is a valid PLAIN message: the
        # answer is about the credentials (no such user), after the delay
        c = self.connect_tls()
        for zid in ("", "u" * 255):
            line = plain("u" * 255, "p" * 255, authzid=zid)
            self.assertLessEqual(len(line) + 2, 1030)
            self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
            t0 = time.monotonic()
            self.assertEqual(c.cmd(line), AUTH_FAIL)
            self.assertGreaterEqual(time.monotonic() - t0, 1.8)
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")
        self.assertTrue(self.srv.wait_idle())
        self.assertIn("login failed reason=unknown-user from=127.0.0.1", self.srv.log())

    def test_overlong_continuation(self):
        c = self.connect_tls()
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertEqual(self.quick(c, "QUFB" * 500), "-ERR line too long")
        # the exchange is over; the next line is a command again
        self.assertEqual(c.cmd("NOOP"), "-ERR command not valid in this state")
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.quit(c)

    def test_auth_lists_mechanisms(self):
        c = self.connect_tls()
        self.assertEqual(c.multi("AUTH"), ("+OK mechanisms follow", ["PLAIN"]))
        self.assertEqual(self.capa(c), CAPA_LOGIN_OK)
        self.quit(c)

    def test_unsupported_mechanism(self):
        c = self.connect_tls()
        for mech in ("LOGIN", "CRAM-MD5", "PLAINX", "EXTERNAL"):
            self.assertEqual(self.quick(c, "AUTH %s" % mech), "-ERR unsupported SASL mechanism")
        self.assertEqual(self.quick(c, "AUTH LOGIN dGlt"), "-ERR unsupported SASL mechanism")
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.quit(c)

    def test_auth_in_transaction(self):
        c = self.connect_tls()
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.assertEqual(c.cmd("AUTH PLAIN " + TIM_VECTOR), "-ERR command not valid in this state")
        self.assertEqual(self.capa(c), CAPA_TRANSACTION)
        self.quit(c)

    def test_failure_delay_and_limit_shared_with_pass(self):
        c = self.connect_tls()
        t0 = time.monotonic()
        self.assertEqual(c.cmd("AUTH PLAIN " + plain("tim", "wrong")), AUTH_FAIL)
        self.assertGreaterEqual(time.monotonic() - t0, 1.8, "AUTH failure not delayed")
        c.cmd("USER tim")
        t0 = time.monotonic()
        self.assertEqual(c.cmd("PASS wrong"), AUTH_FAIL)
        self.assertGreaterEqual(time.monotonic() - t0, 1.8)
        # the third failure, through AUTH with an unknown user, ends it
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        t0 = time.monotonic()
        self.assertEqual(c.cmd(plain("nosuchuser", TIM_PW)), AUTH_FINAL)
        self.assertGreaterEqual(time.monotonic() - t0, 1.8)
        data, closed = self.read_to_close(c)
        self.assertEqual(data, b"")
        self.assertTrue(closed, "connection open after three failed logins")
        self.assertTrue(self.srv.wait_idle())
        log = self.srv.log()
        self.assertEqual(log.count("login failed user=tim reason=bad-credentials from=127.0.0.1"), 2, log)
        self.assertEqual(log.count("login failed reason=unknown-user from=127.0.0.1"), 1, log)
        self.assertNotIn("nosuchuser", log)
        self.assertNotIn("wrong", log)
        self.assertNotIn(TIM_PW, log)

    def test_three_auth_failures(self):
        c = self.connect_tls()
        for i, expect in enumerate((AUTH_FAIL, AUTH_FAIL, AUTH_FINAL)):
            t0 = time.monotonic()
            self.assertEqual(c.cmd("AUTH PLAIN " + plain("tim", "bad%d" % i)), expect)
            self.assertGreaterEqual(time.monotonic() - t0, 1.8)
        data, closed = self.read_to_close(c)
        self.assertTrue(closed and data == b"", "connection open after three failures")
        self.assertCleanExit(self.srv)


# ----------------------------------------------------------------------
# The cleartext policy: -P, CAPA, refusals.
# ----------------------------------------------------------------------

class CleartextPolicy(TlsCase):

    def setUp(self):
        super().setUp()
        self.msgs = self.put_user_mbox("tina", plain_mbox(2))
        self.tim = self.put_user_mbox("tim", plain_mbox(1))

    def refused_before_tls(self, c, msg):
        self.assertEqual(c.cmd("USER tina"), msg)
        self.assertEqual(c.cmd("PASS " + pw("tina")), msg)
        self.assertEqual(c.cmd("AUTH PLAIN " + TIM_VECTOR), msg)
        self.assertEqual(c.cmd("AUTH PLAIN"), msg)
        # the refused AUTH left no exchange open: this is a command
        self.assertEqual(c.cmd("NOOP"), "-ERR command not valid in this state")
        self.assertEqual(c.multi("AUTH"), ("+OK mechanisms follow", []))

    def test_without_P_refused_until_stls(self):
        self.tls_server()
        c = self.connect()
        self.assertEqual(self.capa(c), CAPA_BEFORE_TLS)
        self.refused_before_tls(c, REFUSED_STLS)
        self.stls(c)
        self.assertEqual(self.capa(c), CAPA_LOGIN_OK)
        self.assertEqual(c.multi("AUTH"), ("+OK mechanisms follow", ["PLAIN"]))
        self.assertEqual(c.cmd("USER tina"), "+OK send PASS")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.assertEqual(self.capa(c), CAPA_TRANSACTION)
        self.quit(c, "+OK pop3d signing off (2 messages left)")
        self.assertNotIn("login failed", self.srv.log())

    def test_without_P_auth_plain_after_stls(self):
        self.tls_server()
        c = self.connect()
        self.assertEqual(c.cmd("AUTH PLAIN " + TIM_VECTOR), REFUSED_STLS)
        self.stls(c)
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.quit(c)

    def test_refusal_costs_no_delay(self):
        self.tls_server()
        c = self.connect()
        t0 = time.monotonic()
        for _ in range(4):
            self.assertEqual(c.cmd("USER tina"), REFUSED_STLS)
            self.assertEqual(c.cmd("PASS x"), REFUSED_STLS)
        self.assertLess(time.monotonic() - t0, 1.5)
        # four refused attempts did not use up the three failures
        self.stls(c)
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.quit(c)

    def test_without_P_without_tls(self):
        self.tls_server(tls=False)
        c = self.connect()
        self.assertEqual(self.capa(c), CAPA_NOTHING)
        self.refused_before_tls(c, REFUSED_NO_TLS)
        self.assertEqual(c.cmd("STLS"), "-ERR STLS not available")
        self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off")

    def test_with_P_and_tls(self):
        self.tls_server(cleartext=True)
        c = self.connect()
        self.assertEqual(self.capa(c), CAPA_CLEARTEXT_TLS)
        self.assertEqual(c.multi("AUTH"), ("+OK mechanisms follow", ["PLAIN"]))
        self.assertLogin(c.cmd("AUTH PLAIN " + TIM_VECTOR), self.tim)
        self.quit(c)
        self.assertIn("[monitor] login user=tim tls=no from=127.0.0.1", self.srv.log())
        # and STLS still works, after which CAPA drops STLS
        c = self.connect()
        self.stls(c)
        self.assertEqual(self.capa(c), CAPA_LOGIN_OK)
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.quit(c)

    def test_with_P_without_tls(self):
        self.tls_server(cleartext=True, tls=False)
        c = self.connect()
        self.assertEqual(self.capa(c), CAPA_LOGIN_OK)
        self.assertEqual(c.cmd("AUTH PLAIN"), "+ ")
        self.assertLogin(c.cmd(TIM_VECTOR), self.tim)
        self.quit(c)
        c = self.connect()
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.quit(c)
        self.assertIn("[monitor] login user=tina tls=no from=127.0.0.1", self.srv.log())

    def test_implicit_tls_without_P(self):
        self.tls_server(implicit=True)
        c = self.connect_tls()
        self.assertEqual(self.capa(c), CAPA_LOGIN_OK)
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.quit(c)

    def test_plaintext_client_of_implicit_server(self):
        # a client that speaks POP3 in clear to the -S port gets no greeting
        self.tls_server(implicit=True)
        c = self.connect(greeting=False)
        c.send(b"USER tina\r\n")
        data, closed = self.read_to_close(c, timeout=10)
        self.assertTrue(closed)
        self.assertNotIn(b"+OK", data)
        self.assertCleanExit(self.srv)


class CapaBothStates(TlsCase):
    """RFC 2449 section 5, in every configuration: CAPA after login lists
    what it listed before login on that connection, less STLS, plus
    IMPLEMENTATION."""

    def setUp(self):
        super().setUp()
        self.msgs = self.put_user_mbox("tina", plain_mbox(2))

    def both_states(self, c, before):
        self.assertEqual(self.capa(c), before)
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        after = self.capa(c)
        self.assertEqual(after, capa_after_login(before))
        self.assertEqual(after, CAPA_TRANSACTION)
        self.quit(c, "+OK pop3d signing off (2 messages left)")

    def test_plain_with_P(self):
        self.tls_server(cleartext=True, tls=False)
        self.both_states(self.connect(), CAPA_LOGIN_OK)

    def test_plain_with_P_and_tls_configured(self):
        self.tls_server(cleartext=True)
        self.both_states(self.connect(), CAPA_CLEARTEXT_TLS)

    def test_stls_before_and_after(self):
        self.tls_server()
        c = self.connect()
        self.assertEqual(self.capa(c), CAPA_BEFORE_TLS)
        self.stls(c)
        self.both_states(c, CAPA_LOGIN_OK)

    def test_stls_with_P(self):
        self.tls_server(cleartext=True)
        c = self.connect()
        self.assertEqual(self.capa(c), CAPA_CLEARTEXT_TLS)
        self.stls(c)
        self.both_states(c, CAPA_LOGIN_OK)

    def test_implicit_tls(self):
        self.tls_server(implicit=True)
        self.both_states(self.connect_tls(), CAPA_LOGIN_OK)

    def test_implicit_tls_with_P(self):
        self.tls_server(implicit=True, cleartext=True)
        self.both_states(self.connect_tls(), CAPA_LOGIN_OK)


# ----------------------------------------------------------------------
# TLS settings: protocol versions, the key file, -n.
# ----------------------------------------------------------------------

class TlsSettings(TlsCase):

    def s_client_version(self, port, version, starttls=False):
        argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-" + version,
                "-cipher", "DEFAULT@SECLEVEL=0", "-CAfile", self.tls.cert]
        if starttls:
            argv += ["-starttls", "pop3"]
        # -ign_eof: wait for the server's answer to QUIT, not stdin's end
        return self.run_tool(argv + ["-ign_eof", "-crlf"], input=b"QUIT\n", timeout=30)

    def test_openssl_client_can_do_tls11(self):
        # the control: the client used below does speak TLS 1.1 and 1.0
        # when the server lets it, so their failure against pop3d is pop3d's
        for version in ("tls1_1", "tls1"):
            port = pt.free_port()
            srv = subprocess.Popen(["openssl", "s_server", "-accept", "127.0.0.1:%d" % port,
                                    "-cert", self.tls.cert, "-key", self.tls.key, "-" + version,
                                    "-cipher", "DEFAULT@SECLEVEL=0", "-naccept", "1"],
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            self.helpers.append(srv)
            deadline = time.monotonic() + 10
            while not pt.listening(port):
                self.assertLess(time.monotonic(), deadline, "s_server did not start")
                time.sleep(0.05)
            p = self.s_client_version(port, version)
            want = {"tls1_1": b"TLSv1.1", "tls1": b"TLSv1"}[version]
            self.assertRegex(p.stdout, rb"Protocol\s*: " + want + rb"\n", p.stderr)

    def test_tls10_tls11_refused_tls12_tls13_work(self):
        srv = self.tls_server(implicit=True)
        for version in ("tls1_1", "tls1"):
            p = self.s_client_version(srv.port, version)
            self.assertNotEqual(p.returncode, 0, p.stdout)
            self.assertNotIn(b"+OK pop3d ready", p.stdout)
        for version, name in (("tls1_2", b"TLSv1.2"), ("tls1_3", b"TLSv1.3")):
            p = self.s_client_version(srv.port, version)
            self.assertIn(b"+OK pop3d ready", p.stdout, p.stderr)
            self.assertRegex(p.stdout, rb"Protocol\s*: " + name + rb"\n")
            self.assertIn(b"Verify return code: 0 (ok)", p.stdout)
        self.assertCleanExit(srv, count=4)
        self.assertEqual(srv.log().count("[session] TLS handshake failed error="), 2, srv.log())

    def test_tls11_refused_after_stls(self):
        srv = self.tls_server()
        p = self.s_client_version(srv.port, "tls1_1", starttls=True)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        p = self.s_client_version(srv.port, "tls1_2", starttls=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertRegex(p.stdout, rb"Protocol\s*: TLSv1\.2\n")
        self.assertCleanExit(srv, count=2)

    def test_python_tls11_refused(self):
        srv = self.tls_server(implicit=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            ctx = self.context(minimum_version=ssl.TLSVersion.TLSv1_1,
                               maximum_version=ssl.TLSVersion.TLSv1_1)
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        c = self.connect(greeting=False)
        with self.assertRaises(ssl.SSLError):
            self.wrap(c, ctx)
        self.assertCleanExit(srv)

    def test_key_mode_checked_by_n(self):
        for mode in (0o640, 0o604, 0o644, 0o660, 0o601, 0o610):
            rc, err = self.check_config("-c", self.tls.cert, "-k", self.tls.key_copy(mode))
            self.assertEqual(rc, 1, "mode %o: %s" % (mode, err))
            self.assertIn(KEY_MODE_MSG, err, "mode %o" % mode)
            self.assertNotIn("configuration OK", err)
        for mode in (0o600, 0o400):
            rc, err = self.check_config("-c", self.tls.cert, "-k", self.tls.key_copy(mode))
            self.assertEqual((rc, err.strip()), (0, ""), "mode %o" % mode)

    def test_key_mode_session_gets_no_greeting(self):
        key = self.tls.key_copy(0o640)
        for implicit in (False, True):
            srv = self.tls_server(implicit=implicit, key=key)
            c = self.connect(srv, greeting=False)
            data, closed = self.read_to_close(c, timeout=10)
            self.assertEqual(data, b"")
            self.assertTrue(closed)
            self.assertTrue(srv.wait_idle())
            self.assertIn(KEY_MODE_MSG, srv.log())

    def test_libtls_starts_only_when_tls_is_asked_for(self):
        """libtls parses the key pair at the first STLS (or at once with
        -S), never for a session that does not ask for TLS: with a key
        that does not parse, a cleartext session still logs in, and only
        STLS fails."""
        key = os.path.join(self.tls.dir, "key-garbage.pem")
        with open(key, "w") as f:
            f.write("-----BEGIN PRIVATE KEY-----\nnot a key\n"
                    "-----END PRIVATE KEY-----\n")
        os.chmod(key, 0o600)
        self.put_mbox(plain_mbox(2))
        srv = self.tls_server(cleartext=True, key=key)
        c = self.login(srv=srv)
        self.assertEqual(c.cmd("STAT").split()[:2], ["+OK", "2"])
        self.assertEqual(c.cmd("QUIT")[:3], "+OK")
        c.close()
        c = self.connect(srv)
        self.assertIn("STLS", self.capa(c))
        self.assertEqual(c.cmd("STLS"), STLS_OK)
        _, closed = self.read_to_close(c, timeout=10)
        self.assertTrue(closed)
        self.assertTrue(srv.wait_idle())
        self.assertEqual(srv.log().count("TLS set-up failed"), 1, srv.log())
        srv = self.tls_server(implicit=True, key=key)
        c = self.connect(srv, greeting=False)
        data, closed = self.read_to_close(c, timeout=10)
        self.assertEqual((data, closed), (b"", True))
        self.assertTrue(srv.wait_idle())
        self.assertIn("TLS set-up failed", srv.log())

    def test_n_good_pair(self):
        rc, err = self.check_config("-c", self.tls.cert, "-k", self.tls.key)
        self.assertEqual((rc, err.strip()), (0, ""))
        rc, err = self.check_config("-S", "-c", self.tls.cert, "-k", self.tls.key)
        self.assertEqual((rc, err.strip()), (0, ""))

    def bad_config(self, args, pattern):
        rc, err = self.check_config(*args)
        self.assertEqual(rc, 1, "%s: %s" % (args, err))
        self.assertNotIn("configuration OK", err)
        self.assertRegex(err, pattern)

    def test_n_missing_cert(self):
        self.bad_config(["-c", os.path.join(self.tls.dir, "nonexistent.pem"),
                         "-k", self.tls.key], r"nonexistent\.pem.*No such file")

    def test_n_missing_key(self):
        self.bad_config(["-c", self.tls.cert, "-k", os.path.join(self.tls.dir, "nokey.pem")],
                        r"nokey\.pem.*No such file")

    def test_n_unreadable_cert(self):
        self.bad_config(["-c", self.tls.garbage, "-k", self.tls.key], r"(?i)certificate|garbage")
        self.bad_config(["-c", self.tls.a_dir, "-k", self.tls.key], r"a-directory\.pem")
        # a key where the certificate belongs, and the reverse
        self.bad_config(["-c", self.tls.key, "-k", self.tls.key], r"(?i)certificate")

    def test_n_mismatched_pair(self):
        self.bad_config(["-c", self.tls.cert2, "-k", self.tls.key], r"(?i)key|certificate")
        self.bad_config(["-c", self.tls.cert, "-k", self.tls.key2], r"(?i)key|certificate")

    def test_n_expired_certificate(self):
        out = openssl("x509", "-in", self.tls.expired, "-noout", "-enddate").stdout
        self.assertIn(b"2020", out)
        self.bad_config(["-c", self.tls.expired, "-k", self.tls.key], r"expired")

    def test_n_tls_flags_go_together(self):
        self.bad_config(["-S"], r"-S needs -c and -k")
        rc, err = self.check_config("-c", self.tls.cert)
        self.assertEqual(rc, 1, err)
        rc, err = self.check_config("-k", self.tls.key)
        self.assertEqual(rc, 1, err)


# ----------------------------------------------------------------------
# The login log line names the TLS version and cipher.
# ----------------------------------------------------------------------

class LoginLog(TlsCase):

    def setUp(self):
        super().setUp()
        self.msgs = self.put_user_mbox("tina", plain_mbox(1))

    def test_tls13_implicit(self):
        srv = self.tls_server(implicit=True)
        c = self.connect_tls()
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        self.assertEqual(version, "TLSv1.3")
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.quit(c)
        self.assertEqual(self.login_log(srv, "tina"), ["127.0.0.1 %s/%s" % (version, cipher)])

    def test_tls12_stls_auth_plain(self):
        srv = self.tls_server()
        self.put_user_mbox("tim", plain_mbox(1))
        c = self.connect()
        ctx = self.context(maximum_version=ssl.TLSVersion.TLSv1_2)
        ctx.set_ciphers("ECDHE-ECDSA-CHACHA20-POLY1305")
        self.stls(c, ctx)
        self.assertEqual(c.sock.version(), "TLSv1.2")
        self.assertEqual(c.sock.cipher()[0], "ECDHE-ECDSA-CHACHA20-POLY1305")
        self.assertReply(c.cmd("AUTH PLAIN " + TIM_VECTOR), "+OK maildrop has 1 message (")
        self.quit(c)
        self.assertEqual(self.login_log(srv, "tim"),
                         ["127.0.0.1 TLSv1.2/ECDHE-ECDSA-CHACHA20-POLY1305"])

    def test_plaintext(self):
        srv = self.tls_server(cleartext=True)
        c = self.connect()
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.quit(c)
        self.assertEqual(self.login_log(srv, "tina"), ["127.0.0.1 no"])


# ----------------------------------------------------------------------
# Hostile handshakes, and a large message.
# ----------------------------------------------------------------------

def client_hello():
    """The bytes of a real TLS ClientHello."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


class Handshakes(TlsCase):

    def setUp(self):
        super().setUp()
        self.msgs = self.put_user_mbox("tina", plain_mbox(2))

    def garbage_case(self, srv, c):
        t0 = time.monotonic()
        c.send(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n" + bytes(range(256)) * 8)
        data, closed = self.read_to_close(c, timeout=10)
        self.assertTrue(closed, "connection still open after garbage")
        self.assertLess(time.monotonic() - t0, 5.0)
        self.assertNotIn(b"+OK", data)
        c.close()
        self.assertCleanExit(srv)
        self.assertIn("TLS handshake failed", srv.log())
        # the next client is served
        return time.monotonic() - t0

    def test_garbage_instead_of_client_hello_implicit(self):
        srv = self.tls_server(implicit=True)
        self.garbage_case(srv, self.connect(greeting=False))
        c = self.connect_tls()
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), self.msgs)
        self.quit(c)
        self.assertCleanExit(srv, count=2)

    def test_garbage_after_stls(self):
        srv = self.tls_server()
        c = self.connect()
        self.assertEqual(c.cmd("STLS"), STLS_OK)
        self.garbage_case(srv, c)
        c = self.connect()
        self.stls(c)
        self.quit(c)
        self.assertCleanExit(srv, count=2)

    def test_client_closes_mid_handshake(self):
        srv = self.tls_server(implicit=True)
        c = self.connect(greeting=False)
        hello = client_hello()
        c.send(hello[:len(hello) // 2])
        time.sleep(0.2)
        c.close()
        self.assertCleanExit(srv)

    def test_stalled_handshake_times_out(self):
        # -t 300: what ends this session is the 30 s handshake timeout
        srv = self.tls_server(implicit=True, timeout=300)
        c = self.connect(greeting=False)
        hello = client_hello()
        self.assertEqual(hello[0], 0x16)
        t0 = time.monotonic()
        c.send(hello[:len(hello) // 2])
        data, closed = self.read_to_close(c, timeout=40)
        elapsed = time.monotonic() - t0
        self.assertTrue(closed, "connection still open after 40 s")
        self.assertNotIn(b"+OK", data)
        self.assertLess(elapsed, 35.0)
        self.assertGreater(elapsed, 25.0, "closed long before the handshake timeout")
        c.close()
        self.assertCleanExit(srv)
        self.assertIn("TLS handshake failed reason=timed-out", srv.log())

    def test_large_message_over_stls(self):
        data = big_mbox()
        msgs = self.put_user_mbox("tina", data)
        self.assertEqual(len(msgs), 1)
        self.assertGreater(msgs[0].size, 5 * 1024 * 1024)
        srv = self.tls_server()
        c = self.connect()
        self.stls(c)
        c.cmd("USER tina")
        self.assertLogin(c.cmd("PASS " + pw("tina")), msgs)
        c.send(b"RETR 1\r\nRETR 1\r\n")
        want = b"+OK %d octets\r\n" % msgs[0].size + msgs[0].wire
        got = b""
        c.sock.settimeout(30)
        while len(got) < 2 * len(want) + len(c.buf):
            chunk = c.sock.recv(1 << 20)
            if not chunk:
                break
            got += chunk
        got = c.buf + got
        c.buf = b""
        self.assertEqual(len(got), 2 * len(want))
        self.assertTrue(got[:len(want)] == want, "first RETR differs")
        self.assertTrue(got[len(want):] == want, "second RETR differs")
        self.quit(c, "+OK pop3d signing off (1 message left)")
        self.assertRegex(srv.log(), r"logout user=tina retrieved=2 octets=%d " % (2 * msgs[0].size))

    def test_large_message_implicit_tls_poplib(self):
        # poplib refuses lines over 2048 octets
        data = big_mbox(3 * 1024 * 1024, long_lines=False)
        msgs = self.put_user_mbox("tina", data)
        srv = self.tls_server(implicit=True)
        p = poplib.POP3_SSL("127.0.0.1", srv.port, timeout=30, context=self.context())
        p.user("tina")
        p.pass_(pw("tina"))
        resp, lines, octets = p.retr(1)
        self.assertEqual(b"".join(l + b"\r\n" for l in lines), msgs[0].crlf)
        p.quit()


# ----------------------------------------------------------------------
# The runner.
# ----------------------------------------------------------------------


if __name__ == "__main__":
    import e2e
    sys.exit(e2e.main(['e2e_tls'], 'e2e_tls'))
