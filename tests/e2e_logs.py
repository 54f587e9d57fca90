"""The log as an admin and her tools read it: one line per event,
key=value fields, the client's address on every line of a connection, a
reason on every refusal; the fail2ban filter in etc/ against the lines
these sessions produce; and syslog as in service (no -d)."""

import os
import re
import shutil
import socket
import subprocess
import time

import pop3test as pt
from e2e_tls import TlsCase, pw, plain, STLS_OK

TOP = pt.TOP_DIR
FILTER = os.path.join(TOP, "etc", "fail2ban", "filter.d", "pop3d.conf")
JAILS = os.path.join(TOP, "etc", "fail2ban", "jail.d")

# a line of pop3d's, as -d writes it: "pop3d[PID]: [ROLE] TEXT"
LINE_RE = re.compile(r"^pop3d\[(\d+)\]: \[(monitor|session|maildrop)\] (.*)$")


def pop3d_lines(log):
    return [l for l in log.splitlines() if LINE_RE.match(l)]


class LogLines(TlsCase):

    def setUp(self):
        super().setUp()
        self.msgs = self.put_user_mbox("tina", pt.plain_mbox(2))

    def assertEveryLineFrom(self, log, addr):
        lines = pop3d_lines(log)
        self.assertTrue(lines, log)
        for line in lines:
            self.assertTrue(line.endswith(" from=" + addr), line)
            self.assertEqual(line.count(" from="), 1, line)

    def test_cleartext_login_refused_is_logged(self):
        # the client has just sent its password in the clear: the admin
        # must hear of it
        srv = self.tls_server()
        c = self.connect()
        self.assertReply(c.cmd("USER tina"), "-ERR cleartext login refused, use STLS")
        self.assertReply(c.cmd("PASS " + pw("tina")), "-ERR cleartext login refused")
        self.assertReply(c.cmd("AUTH PLAIN " + plain("tina", pw("tina"))),
                         "-ERR cleartext login refused")
        self.quit(c)
        self.assertTrue(srv.wait_idle())
        log = srv.log()
        self.assertEqual(re.findall(r"(?m)\[session\] login refused .*$", log),
                         ["[session] login refused command=USER reason=cleartext tls=no "
                          "from=127.0.0.1"],
                         log)
        self.assertNotIn(pw("tina"), log)
        self.assertEveryLineFrom(log, "127.0.0.1")

    def test_before_login_lines_name_the_client(self):
        srv = self.tls_server()
        c = self.connect()
        c.close()
        self.assertTrue(srv.wait_idle())
        log = srv.log()
        self.assertRegex(log, r"(?m)^pop3d\[\d+\]: \[session\] session ended before login "
                              r"reason=connection-closed tls=no from=127\.0\.0\.1$")
        self.assertEveryLineFrom(log, "127.0.0.1")

    def test_handshake_failure_once_with_address(self):
        srv = self.tls_server(implicit=True)
        c = self.connect(greeting=False)
        c.send(b"USER tina\r\n")     # POP3 where a ClientHello belongs
        c.expect_closed()
        c.close()
        self.assertTrue(srv.wait_idle())
        log = srv.log()
        failed = re.findall(r"(?m)\[session\] TLS handshake failed .*$", log)
        self.assertEqual(len(failed), 1, log)
        self.assertRegex(failed[0], r'^\[session\] TLS handshake failed error="[^"]+" from=127\.0\.0\.1$')
        self.assertEqual(log.count("handshake failed"), 1, log)
        self.assertEveryLineFrom(log, "127.0.0.1")

    def test_login_and_logout_over_stls(self):
        srv = self.tls_server()
        c = self.connect()
        self.stls(c)
        version, cipher = c.sock.version(), c.sock.cipher()[0]
        c.cmd("USER tina")
        self.assertReply(c.cmd("PASS " + pw("tina")), "+OK maildrop has 2 messages (")
        c.cmd("RETR 2")
        c.read_until_dot()
        self.assertReply(c.cmd("DELE 1"), "+OK")
        self.quit(c, "+OK pop3d signing off (1 message left)")
        self.assertTrue(srv.wait_idle())
        log = srv.log()
        tls = "%s/%s" % (version, cipher)
        self.assertIn("[monitor] login user=tina tls=%s from=127.0.0.1\n" % tls, log)
        self.assertIn("[session] logout user=tina retrieved=1 octets=%d deleted=1 left=1 "
                      "tls=%s from=127.0.0.1\n" % (self.msgs[1].size, tls), log)
        self.assertEveryLineFrom(log, "127.0.0.1")

    def test_dropped_session_says_why(self):
        srv = self.tls_server(implicit=True)
        c = self.connect_tls()
        c.cmd("USER tina")
        self.assertReply(c.cmd("PASS " + pw("tina")), "+OK maildrop has 2 messages (")
        c.cmd("DELE 1")
        c.close()
        self.assertTrue(srv.wait_idle())
        log = srv.log()
        self.assertRegex(log, r"(?m)\[session\] logout user=tina retrieved=0 octets=0 "
                              r"deleted=0 left=2 tls=TLSv1\.3/\S+ "
                              r"reason=connection-(closed|lost) from=127\.0\.0\.1$")

    def test_one_message(self):
        self.put_user_mbox("tina", pt.plain_mbox(1))
        srv = self.tls_server(cleartext=True)
        c = self.connect()
        c.cmd("USER tina")
        self.assertReply(c.cmd("PASS " + pw("tina")), "+OK maildrop has 1 message (")
        self.assertReply(c.cmd("LIST"), "+OK 1 message (")
        c.read_until_dot()
        self.quit(c, "+OK pop3d signing off (1 message left)")
        self.assertTrue(srv.wait_idle())


# ----------------------------------------------------------------------
# fail2ban
# ----------------------------------------------------------------------

def f2b_config(tmp):
    """A private copy of /etc/fail2ban with pop3d's filter and no other
    jail (Debian's sshd jail wants a log this host may not have)."""
    conf = os.path.join(tmp, "fail2ban")
    shutil.copytree("/etc/fail2ban", conf)
    for name in os.listdir(os.path.join(conf, "jail.d")):
        os.unlink(os.path.join(conf, "jail.d", name))
    shutil.copy(FILTER, os.path.join(conf, "filter.d", "pop3d.conf"))
    return conf


class Fail2ban(TlsCase):
    """Real sessions over IPv4 and IPv6, failed and good logins, the log
    they leave, and fail2ban-regex with the shipped filter over it."""

    def setUp(self):
        super().setUp()
        self.put_user_mbox("tina", pt.plain_mbox(1))
        self.put_user_mbox("tim", pt.plain_mbox(1))

    def sessions(self, host):
        """Each kind of failed login once, good logins around them, on a
        server listening on host; returns its log."""
        srv = self.tls_server(cleartext=True) if host == "127.0.0.1" else \
            self.server(["-a", self.tls.passwd, "-P", "-t", "60",
                         "-m", os.path.join(self.spool, "%u"),
                         "-c", self.tls.cert, "-k", self.tls.key], host=host)
        c = self.connect(srv)
        c.cmd("USER tina")
        self.assertReply(c.cmd("PASS " + pw("tina")), "+OK")
        self.quit(c)
        c = self.connect(srv)
        c.cmd("USER tina")
        self.assertReply(c.cmd("PASS wrong-password"), "-ERR [AUTH]")
        c.cmd("USER no-such-user")
        self.assertReply(c.cmd("PASS x"), "-ERR [AUTH]")
        self.assertReply(c.cmd("AUTH PLAIN " + plain("tim", "wrong")), "-ERR [AUTH]")
        c.close()
        c = self.connect(srv)
        self.stls(c)
        self.assertReply(c.cmd("AUTH PLAIN " + plain("tim", pw("tim"))), "+OK")
        self.quit(c)
        self.assertTrue(srv.wait_idle())
        return srv.log()

    def as_syslog_file(self, log):
        """pop3d's lines as rsyslog writes them to /var/log/mail.log."""
        stamp = time.strftime("%b %e %H:%M:%S")
        return "".join("%s mailhost %s\n" % (stamp, l) for l in pop3d_lines(log))

    def test_filter_matches_each_failed_login(self):
        text = ""
        for host in ("127.0.0.1", "::1"):
            text += self.as_syslog_file(self.sessions(host))
        path = os.path.join(self.spool, "mail.log")
        with open(path, "w") as f:
            f.write(text)
        conf = f2b_config(self.spool)
        p = subprocess.run(["fail2ban-regex", "-c", conf, "-o", "<ip>", path, "pop3d"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        got = p.stdout.decode().split()
        # three failures a session: wrong password, unknown user, SASL
        self.assertEqual(got, ["127.0.0.1"] * 3 + ["::1"] * 3, text)
        # every "login failed" line is one of them, no good login is
        failed = [l for l in text.splitlines() if "] login failed " in l]
        self.assertEqual(len(failed), 6, text)
        self.assertEqual(len([l for l in text.splitlines() if "] login user=" in l]), 4, text)
        p = subprocess.run(["fail2ban-regex", "-c", conf, "-o", "<F-CONTENT>", path, "pop3d"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        for line in p.stdout.decode().splitlines():
            self.assertNotIn("login user=", line)

    def test_jails_pass_fail2ban_client_t(self):
        for name in sorted(os.listdir(JAILS)):
            with self.subTest(jail=name):
                conf = f2b_config(os.path.join(self.spool, name))
                with open(os.path.join(JAILS, name)) as f:
                    jail = f.read()
                self.assertIn("enabled = true", jail)
                # only the log file's path changes
                log = os.path.join(self.spool, "mail.log")
                open(log, "a").close()
                jail = re.sub(r"(?m)^logpath = .*$", "logpath = " + log, jail)
                with open(os.path.join(conf, "jail.d", "pop3d.conf"), "w") as f:
                    f.write(jail)
                p = subprocess.run(["fail2ban-client", "-c", conf, "-t"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=60)
                self.assertEqual(p.returncode, 0, p.stdout)
                self.assertIn(b"configuration test is successful", p.stdout)
                p = subprocess.run(["fail2ban-client", "-c", conf, "-d"],
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                   timeout=60)
                self.assertIn(b"['add', 'pop3d', ", p.stdout)


# ----------------------------------------------------------------------
# syslog, as in service
# ----------------------------------------------------------------------

LOG_MAIL = 2 << 3

SYSLOG_RE = re.compile(r"^<(\d+)>(\w{3} [ \d]\d \d\d:\d\d:\d\d) pop3d\[(\d+)\]: (.*)$")


class Syslog(TlsCase):
    """pop3d without -d, its /dev/log a datagram socket of the test's
    own, bound over /dev/log in a private mount namespace."""

    def test_lines_to_syslog(self):
        # a /dev of the test's: the devices pop3d opens, and "log"
        d = self.env.new_dir("dev", 0o755)
        sock_path = os.path.join(d, "log")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(listener.close)
        listener.bind(sock_path)
        os.chmod(sock_path, 0o666)
        listener.settimeout(15)
        self.put_user_mbox("tina", pt.plain_mbox(1))
        port = pt.free_port()
        args = [pt.POP3D, "-a", self.tls.passwd, "-t", "60",
                "-m", os.path.join(self.spool, "%u"), "-c", self.tls.cert, "-k", self.tls.key,
                "-i", "none"]   # no index: its directory would log a line
        # systemd-socket-activate in a mount namespace of its own where
        # /dev is that directory (a host may have no /dev/log to bind
        # over); pop3d inherits it
        script = ('for n in null zero full random urandom; do '
                  'touch "$0/$n" && mount --bind "/dev/$n" "$0/$n" || exit 1; done; '
                  'mount --rbind "$0" /dev && exec systemd-socket-activate --accept '
                  '--inetd -l 127.0.0.1:%d "$@"' % port)
        proc = subprocess.Popen(["unshare", "-m", "--propagation", "private", "sh", "-c",
                                 script, d] + args,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        self.helpers.append(proc)
        deadline = time.monotonic() + 10
        while not pt.listening(port):
            self.assertIsNone(proc.poll(), proc.stderr.read() if proc.poll() is not None else "")
            self.assertLess(time.monotonic(), deadline, "no listener")
            time.sleep(0.02)
        c = pt.Client("127.0.0.1", port)
        self.assertTrue(c.readline().startswith(pt.GREETING))
        self.assertEqual(c.cmd("STLS"), STLS_OK)
        self.wrap(c)
        c.cmd("USER tina")
        self.assertReply(c.cmd("PASS wrong"), "-ERR [AUTH]")
        c.cmd("USER tina")
        self.assertReply(c.cmd("PASS " + pw("tina")), "+OK maildrop has 1 message (")
        self.quit(c)
        c.close()
        got = []
        while not any("logout" in g for g in got):
            got.append(listener.recv(4096).decode())
        parsed = [SYSLOG_RE.match(g) for g in got]
        self.assertTrue(all(parsed), got)
        pids = {m.group(3) for m in parsed}
        self.assertEqual(len(pids), 1, got)
        for m in parsed:
            self.assertEqual(int(m.group(1)) & ~7, LOG_MAIL, m.group(0))
        texts = [m.group(4) for m in parsed]
        self.assertEqual(texts[0], "[monitor] login failed user=tina reason=bad-credentials "
                                   "from=127.0.0.1")
        self.assertRegex(texts[1], r"^\[monitor\] login user=tina tls=TLSv1\.3/\S+ "
                                   r"from=127\.0\.0\.1$")
        self.assertRegex(texts[2], r"^\[session\] logout user=tina retrieved=0 octets=0 "
                                   r"deleted=0 left=1 tls=TLSv1\.3/\S+ from=127\.0\.0\.1$")
        self.assertEqual(len(texts), 3, texts)
        # the monitor of that connection, as the tag says
        self.assertEqual(int(m.group(1)) & 7, 6, "priority info")
        proc.terminate()
        proc.wait(10)
