#!/usr/bin/env python3
"""End-to-end tests of pop3d behind a proxy (issue 14): the PROXY protocol
(-x) against the real binary, then the whole picture on one machine.

    python3 tests/e2e_proxy.py            # everything (about a minute)
    python3 tests/e2e_proxy.py -v Header  # some classes or tests

Header: v1 and v2 headers from a trusted peer (this test, bound to the
proxy's address), what the log then names, LOCAL and UNKNOWN, the
PP2_CLIENT_SSL bit and the cleartext policy, a missing, late, overlong
or malformed header, a PROXY line from a peer that is not trusted, and a
header in front of implicit TLS.

Nginx: three backends on 127.0.0.2-4 with a shard of the users each,
nginx's mail proxy in front on 127.0.0.1 (etc/nginx/pop3d-proxy.conf),
curl bound to 127.0.0.5 over implicit TLS and STLS; then 200 concurrent
sessions of 200 users.  Haproxy: HAProxy (etc/haproxy/pop3d.cfg) in front
of one backend with send-proxy-v2 and send-proxy-v2-ssl, health checks.

Builds on tests/pop3test.py (the environment, the server, the raw client)
and the certificate of tests/e2e_tls.py.  Must run as root.  E2E_LOG=1
prints each server's log after its test; E2E_KEEP=1 keeps the files.
"""

import os
import re
import socket
import ssl
import struct
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pop3test as pt  # noqa: E402
from pop3test import Pop3TestCase, parse_mbox, plain_mbox  # noqa: E402
import e2e_tls  # noqa: E402

TOP = os.path.dirname(HERE)
PROXY_ADDR = "127.0.0.1"        # the proxy, as the backends see it
CLIENT_ADDR = "127.0.0.5"       # the clients, as the proxy sees them
BACKEND = "127.0.0.2"
HEADER_TIMEOUT = 3              # params.h PROXY_HEADER_TIMEOUT

V2_SIG = b"\r\n\r\n\0\r\nQUIT\n"


def v1(src="192.0.2.7", dst=BACKEND, sport=40000, dport=110, proto="TCP4"):
    return ("PROXY %s %s %s %d %d\r\n" % (proto, src, dst, sport, dport)).encode()


def v2(cmd=0x21, fam=0x11, src="192.0.2.7", dst=BACKEND, sport=40000,
       dport=110, tlv=b""):
    if fam == 0x11:
        addr = socket.inet_pton(socket.AF_INET, src) + \
            socket.inet_pton(socket.AF_INET, dst)
    elif fam == 0x21:
        addr = socket.inet_pton(socket.AF_INET6, src) + \
            socket.inet_pton(socket.AF_INET6, dst)
    else:
        addr = b""
    if addr:
        addr += struct.pack("!HH", sport, dport)
    body = addr + tlv
    return V2_SIG + bytes([cmd, fam]) + struct.pack("!H", len(body)) + body


def ssl_tlv(client=0x01):
    """PP2_TYPE_SSL: client bits, verify 0, and a PP2_SUBTYPE_SSL_VERSION."""
    sub = b"\x21" + struct.pack("!H", 7) + b"TLSv1.3"
    value = bytes([client]) + b"\0\0\0\0" + sub
    return b"\x20" + struct.pack("!H", len(value)) + value


class BoundClient(pt.Client):
    """A raw client whose connection comes from the address src."""

    def __init__(self, host, port, src, timeout=pt.IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout,
                                             source_address=(src, 0))
        self.buf = b""
        self.closed = False


class ProxyCase(Pop3TestCase):
    """A backend on 127.0.0.2 that trusts PROXY headers from 127.0.0.1."""

    def backend(self, trusted=PROXY_ADDR, cleartext=True, extra=()):
        args = self.default_args(cleartext=cleartext) + ["-x", trusted] + list(extra)
        return self.server(args, host=BACKEND)

    def peer(self, src=PROXY_ADDR, srv=None):
        srv = srv or self.srv
        self.assertTrue(srv.wait_idle(10), "an earlier pop3d session did not end")
        c = BoundClient(srv.host, srv.port, src)
        c.mark = len(self.log_lines(srv))
        self.clients.append(c)
        return c

    @staticmethod
    def log_lines(srv):
        return [l for l in srv.log().splitlines() if "pop3d[" in l]

    def greeted(self, c):
        g = c.readline()
        self.assertTrue(g.startswith(pt.GREETING), "greeting: %r" % g)

    def login_quit(self, c, user="alice"):
        self.assertReply(c.cmd("USER " + user), "+OK")
        self.assertReply(c.cmd("PASS " + pt.password(user)), "+OK maildrop has ")
        self.quit(c)

    def dropped(self, c, why):
        """The server closes c without a greeting and logs one line why."""
        self.assertTrue(c.expect_closed(), "connection not closed: %r" % c.buf)
        c.close()
        self.assertTrue(self.srv.wait_idle(10))
        lines = self.log_lines(self.srv)[c.mark:]
        self.assertEqual(len(lines), 1, "expected one log line: %s" % lines)
        self.assertIn(why, lines[0])
        return lines[0]


class Header(ProxyCase):

    def setUp(self):
        super().setUp()
        self.put_mbox(plain_mbox(2))

    def test_v1_names_the_client(self):
        self.backend()
        c = self.peer()
        c.send(v1())
        self.greeted(c)
        self.login_quit(c)
        self.assertRegex(self.srv.log(), r"(?m)login user=alice tls=no from=192\.0\.2\.7 "
                         r"via=127\.0\.0\.1$")

    def test_v1_tcp6(self):
        self.backend()
        c = self.peer()
        c.send(v1(src="2001:DB8:0::7", dst="2001:db8::1", proto="TCP6"))
        self.greeted(c)
        c.cmd("USER alice")
        self.assertReply(c.cmd("PASS wrong"), "-ERR [AUTH]")
        self.quit(c)
        self.assertRegex(self.srv.log(), r"(?m)login failed user=alice reason=bad-credentials "
                         r"from=2001:db8::7 via=127\.0\.0\.1$")

    def test_v2_tcp4_and_tcp6(self):
        self.backend()
        c = self.peer()
        c.send(v2(src="198.51.100.9"))
        self.greeted(c)
        self.login_quit(c)
        c = self.peer()
        c.send(v2(fam=0x21, src="2001:db8::9", dst="::1"))
        self.greeted(c)
        self.login_quit(c)
        log = self.srv.log()
        self.assertRegex(log, r"(?m)login user=alice tls=no from=198\.51\.100\.9 via=127\.0\.0\.1$")
        self.assertRegex(log, r"(?m)login user=alice tls=no from=2001:db8::9 via=127\.0\.0\.1$")

    def test_local_and_unknown_are_the_proxy(self):
        self.backend()
        for hdr in (v2(cmd=0x20, fam=0x00), v2(cmd=0x20, fam=0x11),
                    b"PROXY UNKNOWN\r\n", b"PROXY UNKNOWN 1.2.3.4 5.6.7.8 1 2\r\n"):
            c = self.peer()
            c.send(hdr)
            self.greeted(c)
            self.login_quit(c)
        log = self.srv.log()
        self.assertEqual(len(re.findall(r"(?m)login user=alice tls=no from=127\.0\.0\.1$", log)),
                         4, log)
        self.assertNotIn("via=", log)

    def test_proxy_over_ipv6(self):
        self.server(self.default_args() + ["-x", "::1/128"], host="::1")
        c = self.peer(src="::1")
        c.send(v1(src="192.0.2.8", dst="127.0.0.1"))
        self.greeted(c)
        self.login_quit(c)
        self.assertRegex(self.srv.log(), r"(?m)login user=alice tls=no from=192\.0\.2\.8 "
                         r"via=::1$")

    def test_header_and_commands_in_one_packet(self):
        self.backend()
        c = self.peer()
        c.send(v2() + b"USER alice\r\nPASS " + pt.password("alice").encode() + b"\r\n")
        self.greeted(c)
        self.assertReply(c.readline().decode(), "+OK")
        self.assertReply(c.readline().decode(), "+OK maildrop has 2 ")
        self.quit(c)

    def test_client_ssl_counts_as_tls(self):
        self.backend(cleartext=False)
        c = self.peer()
        c.send(v2(tlv=ssl_tlv()))
        self.greeted(c)
        self.login_quit(c)
        self.assertRegex(self.srv.log(), r"(?m)login user=alice tls=proxy from=192\.0\.2\.7 "
                         r"via=127\.0\.0\.1$")
        # without the bit, or without the TLV: the usual cleartext policy
        for tlv in (ssl_tlv(client=0x00), b"", b"\x04\x00\x00"):
            c = self.peer()
            c.send(v2(tlv=tlv))
            self.greeted(c)
            self.assertReply(c.cmd("USER alice"), "-ERR cleartext login refused")
            self.quit(c)

    def test_no_header_is_dropped(self):
        self.backend()
        c = self.peer()
        c.send(b"USER alice\r\n")
        self.dropped(c, "reason=invalid-proxy-header")

    def test_silence_is_dropped_after_the_deadline(self):
        self.backend()
        c = self.peer()
        t0 = time.monotonic()
        self.dropped(c, "reason=timed-out")
        # the short deadline, not the -t inactivity timeout of 30 s
        self.assertLess(time.monotonic() - t0, HEADER_TIMEOUT + 8)

    def test_half_header_is_dropped_after_the_deadline(self):
        self.backend()
        c = self.peer()
        c.send(v1()[:20])
        self.dropped(c, "reason=timed-out")

    def test_bounds(self):
        self.backend()
        # a v1 line of 108 octets
        c = self.peer()
        c.send(b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n")
        self.dropped(c, "reason=invalid-proxy-header")
        # a v2 length over the bound: refused before its bytes come
        c = self.peer()
        c.send(V2_SIG + b"\x21\x11\xff\xff")
        self.dropped(c, "reason=invalid-proxy-header")

    def test_malformed(self):
        self.backend()
        for hdr in (b"PROXY TCP4 192.0.2.7 127.0.0.2 40000\r\n",
                    b"PROXY TCP4 ::1 127.0.0.2 1 2\r\n",
                    b"PROXY TCP4 192.0.2.7 127.0.0.2 1 2\n",
                    v2(fam=0x12), v2(fam=0x31), v2(cmd=0x22),
                    v2(tlv=b"\x20\x00\x09\x01")):
            with self.subTest(hdr=hdr):
                c = self.peer()
                c.send(hdr)
                self.assertTrue(c.expect_closed(), "not closed: %r" % c.buf)
                c.close()
        self.assertTrue(self.srv.wait_idle(10))
        self.assertEqual(self.srv.log().count("reason=invalid-proxy-header"), 7)
        self.assertNotIn("login user=", self.srv.log())

    def test_untrusted_peer_gets_a_bad_command(self):
        # trusted is the proxy's address; this peer is another one
        self.backend()
        c = self.peer(src=CLIENT_ADDR)
        self.greeted(c)
        self.assertReply(c.cmd(v1().decode().rstrip()), "-ERR unknown command")
        self.login_quit(c)
        log = self.srv.log()
        self.assertRegex(log, r"(?m)login user=alice tls=no from=127\.0\.0\.5$")
        self.assertNotIn("192.0.2.7", log)
        self.assertNotIn("via=", log)

    def test_no_x_no_header(self):
        self.server(self.default_args(), host=BACKEND)
        c = self.peer()
        self.greeted(c)
        self.assertReply(c.cmd(v1().decode().rstrip()), "-ERR unknown command")
        self.login_quit(c)
        self.assertNotIn("via=", self.srv.log())

    def test_header_before_implicit_tls(self):
        files = e2e_tls.TlsFiles.get()
        self.backend(cleartext=False, extra=["-S", "-c", files.cert, "-k", files.key])
        c = self.peer()
        c.send(v2(src="203.0.113.4"))
        ctx = ssl.create_default_context(cafile=files.cert)
        ctx.check_hostname = False
        c.sock = ctx.wrap_socket(c.sock)
        self.greeted(c)
        self.login_quit(c)
        self.assertRegex(self.srv.log(), r"(?m)login user=alice tls=TLSv1\S+ from=203\.0\.113\.4 "
                         r"via=127\.0\.0\.1$")

    def test_configtest(self):
        env = self.env
        for bad, why in (("10.0.0.1/8", "10.0.0.1/8: not an address"),
                         ("127.0.0.0/8,", "empty"), ("::1/129", "::1/129"),
                         ("localhost", "localhost")):
            p = subprocess.run([pt.POP3D, "-n", "-P", "-a", env.passwd, "-x", bad],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            self.assertEqual(p.returncode, 1, bad)
            self.assertIn(why, p.stderr.decode())
        p = subprocess.run([pt.POP3D, "-n", "-P", "-a", env.passwd, "-x",
                            "127.0.0.0/8,::1/128,192.0.2.0/24"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, b"configuration OK\n")
        # a bad -x is fatal for a real session too
        srv = self.server(self.default_args() + ["-x", "10.0.0.1/8"], host=BACKEND)
        c = self.peer()
        self.assertTrue(c.expect_closed())
        c.close()
        self.assertTrue(srv.wait_idle(10))
        self.assertIn("-x 10.0.0.1/8", srv.log())



class ForgedReport(ProxyCase):
    """A session process that lies (the test build's POP3D_TEST_FORGE_PROXY
    makes it send an IPC_PROXY of its own after the header, if any): the
    monitor ends the connection and never logs the forged address."""

    CRASHTEST = os.path.join(TOP, "pop3d-crashtest")

    def forged(self, addr, trusted, header=None):
        self.assertTrue(os.access(self.CRASHTEST, os.X_OK), "make pop3d-crashtest first")
        self.put_mbox(plain_mbox(1))
        args = self.default_args() + (["-x", trusted] if trusted else [])
        self.server(args, host=BACKEND, binary=self.CRASHTEST,
                    env={"POP3D_TEST_FORGE_PROXY": addr})
        c = self.peer()
        if header is not None:
            c.send(header)
        # the monitor is gone: no greeting, or no login after it
        try:
            c.readline()
            c.cmd("USER alice")
            r = c.cmd("PASS " + pt.password("alice"))
            self.assertFalse(r.startswith("+OK"), r)
        except pt.Closed:
            pass
        c.close()
        self.assertTrue(self.srv.wait_idle(10))
        log = self.srv.log()
        self.assertNotIn("login user=", log)
        self.assertNotIn("from=" + addr, log)
        return log

    def test_from_a_peer_not_in_x(self):
        log = self.forged("192.0.2.66", None)
        self.assertIn("unexpected PROXY address from session", log)
        log = self.forged("192.0.2.66", "127.0.0.9")
        self.assertIn("unexpected PROXY address from session", log)

    def test_a_second_report(self):
        log = self.forged("192.0.2.66", PROXY_ADDR, v1())
        # the IPC contract allows it once (ipc.c); the handler checks too
        self.assertRegex(log, r"sent too often|unexpected PROXY address from session")

    def test_not_an_address(self):
        for bad in ("evil via=10.0.0.1", "192.0.2.1 ", "2001:DB8::1", "::ffff:1.2.3.4x"):
            with self.subTest(addr=bad):
                log = self.forged(bad, PROXY_ADDR, b"PROXY UNKNOWN\r\n")
                self.assertIn("invalid PROXY address received", log)


# ----------------------------------------------------------------------
# The whole picture: shipped configurations, real proxies, real clients.
# ----------------------------------------------------------------------

SHARDS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
NUSERS = 200                    # the load test's users; the first 30 are
NPICTURE = 30                   # those of the functional test

def etc(*path):
    return os.path.join(TOP, "etc", *path)


def read_text(path):
    with open(path) as f:
        return f.read()


def substitute(text, pairs):
    """Replaces each (old, new) exactly once: a shipped file that no longer
    has what the test replaces fails the test, not silently."""
    for old, new in pairs:
        n = text.count(old)
        if n != 1:
            raise AssertionError("%r found %d times in a shipped file" % (old, n))
        text = text.replace(old, new)
    return text


def user_name(i):
    return "px%03d" % i


def user_pw(i):
    return "px-pw-%03d-%d" % (i, i * 7919 % 10007)


def user_uid(i):
    return 64000 + i


def shard_of(i):
    return i % len(SHARDS)


def user_mbox(i):
    """Two messages that name their user, the second with a dot line."""
    name = user_name(i).encode()
    return pt.mbox_bytes([
        (pt.from_line(1), pt.msg(1, b"for " + name, b"hello " + name + b"\nline two\n")),
        (pt.from_line(2), pt.msg(2, b"second " + name, b".dot line\n" + name * 40 + b"\n")),
    ])


class Users:
    """The users of the shards and their passwd lines, hashed once."""

    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = Users()
        return cls._instance

    def __init__(self):
        pws = "".join(user_pw(i) + "\n" for i in range(NUSERS))
        hashes = pt.run(["openssl", "passwd", "-6", "-stdin"],
                        input=pws.encode()).stdout.decode().split()
        assert len(hashes) == NUSERS
        self.lines = ["%s:%s:%d:%d::/nonexistent:/bin/sh"
                      % (user_name(i), hashes[i], user_uid(i), user_uid(i))
                      for i in range(NUSERS)]


class Picture(ProxyCase):
    """Backends on SHARDS, each with its own spool and passwd file holding
    its shard of the users, started from the shipped unit files."""

    nusers = NPICTURE

    def setUp(self):
        super().setUp()
        self.tls = e2e_tls.TlsFiles.get()
        self.users = Users.get()
        self.procs = []
        self.work = self.env.new_dir("proxies")
        self.check_units()

    def tearDown(self):
        for p in self.procs:
            self.stop_proc(p)
        super().tearDown()

    @staticmethod
    def stop_proc(p):
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def check_units(self):
        """The shipped backend units: a socket with Accept=yes, no limit
        per source, MaxConnections above systemd's 64; their ExecStart
        flags are those the backends here run with."""
        sock = read_text(etc("systemd", "pop3d-backend.socket"))
        self.assertRegex(sock, r"(?m)^Accept=yes$")
        self.assertRegex(sock, r"(?m)^ListenStream=\S+$")
        self.assertNotRegex(sock, r"(?m)^MaxConnectionsPerSource=")
        self.assertGreater(int(re.search(r"(?m)^MaxConnections=(\d+)$", sock).group(1)),
                           2 * NUSERS)
        unit = read_text(etc("systemd", "pop3d-backend@.service"))
        argv = re.search(r"(?m)^ExecStart=(.*)$", unit).group(1).split()
        self.assertTrue(argv[0].endswith("/pop3d"))
        self.unit_flags = argv[1:]

    def backend_flags(self, cleartext=True):
        """The unit's flags with this machine's paths; -x the proxy."""
        out, it = [], iter(self.unit_flags)
        for a in it:
            if a == "-x":
                out += ["-x", PROXY_ADDR]
                next(it)
            elif a in ("-c", "-k"):
                out += [a, self.tls.cert if a == "-c" else self.tls.key]
                next(it)
            elif a == "-P":
                if cleartext:
                    out.append(a)
            else:
                out.append(a)
        self.assertIn("-x", out)
        return out

    def start_backends(self, cleartext=True, shards=SHARDS):
        """One backend per shard address, on one port free on all."""
        while True:
            port = pt.free_port(host=shards[0])
            if all(self.port_free(h, port) for h in shards):
                break
        self.backends = []
        for n, host in enumerate(shards):
            spool = self.env.new_dir("spool")
            passwd = os.path.join(spool, "passwd")
            mine = [i for i in range(self.nusers) if shard_of(i) == n]
            with open(passwd, "w") as f:
                f.write("".join(self.users.lines[i] + "\n" for i in mine))
            os.chmod(passwd, 0o600)
            for i in mine:
                pt.write_mailbox(os.path.join(spool, user_name(i)), user_mbox(i), "alice")
                os.chown(os.path.join(spool, user_name(i)), user_uid(i), user_uid(i))
            args = self.backend_flags(cleartext) + [
                "-a", passwd, "-t", "60", "-m", os.path.join(spool, "%u")]
            # one log directory each: the log's name is the port's
            srv = ServerOnPort(args, self.env.new_dir("log"), host, port)
            self.servers.append(srv)
            srv.spool = spool
            self.backends.append(srv)
        self._srv = self.backends[0]
        return port

    @staticmethod
    def port_free(host, port):
        s = socket.socket()
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False
        finally:
            s.close()

    def spawn(self, argv, ports, log):
        logf = open(log, "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                             stderr=subprocess.STDOUT)
        logf.close()
        self.procs.append(p)
        deadline = time.monotonic() + 15
        while not all(pt.listening(port) for port in ports):
            if p.poll() is not None or time.monotonic() > deadline:
                self.fail("%s did not start: %s" % (argv[0], read_text(log)))
            time.sleep(0.05)
        return p

    def curl(self, url, user, pw, *args):
        return subprocess.run(
            ["curl", "-s", "-S", "--max-time", "60", "--interface", CLIENT_ADDR,
             "--cacert", self.tls.cert, "-u", "%s:%s" % (user, pw)] + list(args) + [url],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def fetch_all(self, url_base, i, *args):
        """Every message of user i through url_base in one curl run (one
        session), each checked byte for byte."""
        want = parse_mbox(user_mbox(i))
        out = os.path.join(self.work, "%s-%d" % (user_name(i), len(args)))
        os.makedirs(out, exist_ok=True)
        p = self.curl("%s/[1-%d]" % (url_base, len(want)), user_name(i), user_pw(i),
                      "-o", os.path.join(out, "#1"), *args)
        self.assertEqual(p.returncode, 0, "%s: %s" % (user_name(i), p.stderr))
        for n, m in enumerate(want):
            got = pt.read_file(os.path.join(out, str(n + 1)))
            self.assertTrue(got == m.crlf, "%s message %d differs" % (user_name(i), n + 1))

    def assertFromClient(self, srv, what):
        """srv's log names the client, and the proxy as via=, for what."""
        self.assertRegex(srv.log(), "(?m)" + what + r".* from=127\.0\.0\.5 via=127\.0\.0\.1$")


class ServerOnPort(pt.Server):
    """pt.Server on a port chosen by the caller (the shards share one)."""

    def __init__(self, args, logdir, host, port):
        real = pt.free_port
        pt.free_port = lambda fam=None, h=None: port
        try:
            super().__init__(args, logdir, host)
        finally:
            pt.free_port = real


def parallel(fn, items, width=8):
    """Runs fn over items in width threads; returns the exceptions."""
    import threading
    errors, lock, todo = [], threading.Lock(), list(items)

    def worker():
        while True:
            with lock:
                if not todo:
                    return
                item = todo.pop()
            try:
                fn(item)
            except Exception as e:  # noqa: BLE001 - reported below
                with lock:
                    errors.append("%r: %s" % (item, e))

    threads = [threading.Thread(target=worker) for _ in range(width)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


class NginxFront(Picture):
    """etc/nginx/pop3d-proxy.conf in front of three shards."""

    def start_nginx(self, backend_port):
        self.p995 = pt.free_port()
        self.p110 = pt.free_port()
        auth = pt.free_port()
        users = "".join("\t\t%s\t\t%s;\n" % (user_name(i), SHARDS[shard_of(i)])
                        for i in range(self.nusers))
        text = read_text(etc("nginx", "pop3d-proxy.conf"))
        text = re.sub(r"(map \$http_auth_user \$pop3d_backend \{\n)(.*?)(\t\})",
                      lambda m: m.group(1) + "\t\tdefault\t\t%s;\n" % SHARDS[0] + users
                      + m.group(3), text, count=1, flags=re.S)
        w = self.work
        text = substitute(text, [
            ("pid /run/nginx-pop3d.pid;", "pid %s/nginx.pid;" % w),
            ("error_log /var/log/nginx/pop3d-error.log;", "error_log %s/error.log info;" % w),
            ("listen 127.0.0.1:9110;", "listen 127.0.0.1:%d;" % auth),
            ("auth_http 127.0.0.1:9110/", "auth_http 127.0.0.1:%d/" % auth),
            ("add_header Auth-Port 110;", "add_header Auth-Port %d;" % backend_port),
            ("/etc/ssl/pop.example.org/fullchain.pem", self.tls.cert),
            ("/etc/ssl/pop.example.org/privkey.pem", self.tls.key),
            ("listen 995 ssl;", "listen 127.0.0.1:%d ssl;" % self.p995),
            ("listen 110;", "listen 127.0.0.1:%d;" % self.p110),
        ])
        conf = os.path.join(w, "nginx.conf")
        with open(conf, "w") as f:
            f.write(text)
        self.nginx_log = os.path.join(w, "nginx.out")
        self.nginx = self.spawn(["nginx", "-p", w + "/", "-e", os.path.join(w, "startup.log"),
                                 "-c", conf, "-g", "daemon off;"],
                                [self.p995, self.p110, auth], self.nginx_log)

    def setUp(self):
        super().setUp()
        self.start_nginx(self.start_backends())
        self.pop3s = "pop3s://127.0.0.1:%d" % self.p995
        self.pop3 = "pop3://127.0.0.1:%d" % self.p110

    def tls_client(self, port):
        """A raw client over implicit TLS to the front, from CLIENT_ADDR."""
        ctx = ssl.create_default_context(cafile=self.tls.cert)
        s = socket.create_connection(("127.0.0.1", port), 60,
                                     source_address=(CLIENT_ADDR, 0))
        c = pt.Client.__new__(pt.Client)
        c.sock, c.buf, c.closed = ctx.wrap_socket(s, server_hostname="localhost"), b"", False
        self.clients.append(c)
        return c


class Nginx(NginxFront):

    def test_every_user_through_nginx(self):
        users = range(self.nusers)
        errors = parallel(lambda i: self.fetch_all(self.pop3s, i), users)
        errors += parallel(lambda i: self.fetch_all(self.pop3, i, "--ssl-reqd"), users)
        self.assertEqual(errors, [])
        for n, srv in enumerate(self.backends):
            log = srv.log()
            for i in users:
                if shard_of(i) == n:
                    self.assertFromClient(srv, r"login user=%s " % user_name(i))
                else:
                    self.assertFalse(user_name(i) in log, "%s on shard %d" % (user_name(i), n))
            self.assertNotIn("invalid-proxy-header", log)
        # mail fetched, none deleted: every mailbox as it was
        for n, srv in enumerate(self.backends):
            for i in users:
                if shard_of(i) == n:
                    self.assertEqual(pt.read_file(os.path.join(srv.spool, user_name(i))),
                                     user_mbox(i))

    def test_failed_logins_name_the_client(self):
        # three users of the first shard, and an unknown name, which goes
        # to the default shard, which logs it
        tries = [(user_name(i), "wrong") for i in (0, 3, 6)] + [("nosuchuser", "x")]
        codes = []
        parallel(lambda t: codes.append(self.curl(self.pop3s + "/1", *t).returncode), tries)
        self.assertEqual(len(codes), 4)
        self.assertNotIn(0, codes)
        srv = self.backends[0]
        self.assertTrue(srv.wait_idle(10))
        log = srv.log()
        fails = [l for l in log.splitlines() if "[monitor]" in l and "fail" in l]
        self.assertEqual(len(fails), 4, log)
        for l in fails:
            self.assertRegex(l, r" from=127\.0\.0\.5 via=127\.0\.0\.1$")
        self.fail2ban(srv, 4)

    def fail2ban(self, srv, count):
        """fail2ban-regex with the shipped filter over the backend's log,
        as rsyslog writes it, finds count failures, all by the client's
        address, none by the proxy's."""
        import e2e_logs
        stamp = time.strftime("%b %e %H:%M:%S")
        path = os.path.join(self.work, "mail.log")
        with open(path, "w") as f:
            f.write("".join("%s backend %s\n" % (stamp, l)
                            for l in e2e_logs.pop3d_lines(srv.log())))
        conf = e2e_logs.f2b_config(self.work)
        p = subprocess.run(["fail2ban-regex", "-c", conf, "-o", "<ip>", path, "pop3d"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode().split(), [CLIENT_ADDR] * count)

    def test_stopped_backend(self):
        down = self.backends[2]
        down.stop()
        victim = 2                      # shard_of(2) == 2
        c = self.tls_client(self.p995)
        self.assertReply(c.readline().decode(), "+OK")
        self.assertReply(c.cmd("USER " + user_name(victim)), "+OK")
        r = c.cmd("PASS " + user_pw(victim))
        # nginx's own words for a backend it cannot reach; its error log
        # names the backend for the admin
        self.assertEqual(r, "-ERR internal server error")
        self.assertTrue(c.expect_closed())
        err = read_text(os.path.join(self.work, "error.log"))
        self.assertRegex(err, r"Connection refused.*upstream: %s:%d"
                         % (re.escape(SHARDS[2]), down.port))
        c.close()
        # the others are unaffected
        errors = parallel(lambda i: self.fetch_all(self.pop3s, i),
                          [i for i in range(9) if shard_of(i) != 2])
        self.assertEqual(errors, [])



class NginxLoad(NginxFront):
    """200 concurrent sessions of 200 users through nginx."""

    nusers = NUSERS

    def test_200_concurrent_sessions(self):
        import threading
        together = threading.Barrier(self.nusers, timeout=120)
        errors = []

        def session(i):
            try:
                want = parse_mbox(user_mbox(i))
                c = self.tls_client(self.p995)
                self.assertReply(c.readline().decode(), "+OK")
                self.assertReply(c.cmd("USER " + user_name(i)), "+OK")
                self.assertReply(c.cmd("PASS " + user_pw(i)), "+OK maildrop has 2 ")
                # every session logged in and open at once
                if together.wait() == 0:
                    self.all_in = time.monotonic()
                for n, m in enumerate(want):
                    self.assertReply(c.cmd("RETR %d" % (n + 1)), "+OK")
                    self.assertTrue(c.read_until_dot() == m.wire, "RETR %d" % (n + 1))
                self.assertReply(c.cmd("DELE 1"), "+OK")
                self.assertReply(c.cmd("QUIT"), "+OK pop3d signing off (1 message")
                c.close()
            except Exception as e:  # noqa: BLE001 - collected and reported
                together.abort()
                errors.append("%s: %r" % (user_name(i), e))

        threads = [threading.Thread(target=session, args=(i,)) for i in range(self.nusers)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        self.assertEqual(errors[:5], [])
        self.assertFalse(any(t.is_alive() for t in threads), "sessions still running")
        # each mailbox lost the one message deleted, nothing else
        for n, srv in enumerate(self.backends):
            self.assertTrue(srv.wait_idle(30))
            for i in range(self.nusers):
                if shard_of(i) == n:
                    data = user_mbox(i)
                    second = parse_mbox(data)[1].start
                    self.assertEqual(pt.read_file(os.path.join(srv.spool, user_name(i))),
                                     data[second:], user_name(i))
            self.assertNotIn("invalid-proxy-header", srv.log())
        print("\ne2e_proxy: 200 concurrent sessions through nginx: all logged in "
              "after %.1f s, done after %.1f s" % (self.all_in - t0, time.monotonic() - t0),
              file=sys.stderr)


class Haproxy(Picture):
    """etc/haproxy/pop3d.cfg in front of one backend without -P: STLS
    passed through to pop3d on 110, TLS ended at HAProxy on 995 with
    send-proxy-v2-ssl, health checks with LOCAL headers."""

    def setUp(self):
        super().setUp()
        port = self.start_backends(cleartext=False, shards=SHARDS[:1])
        self.p110, self.p995 = pt.free_port(), pt.free_port()
        w = self.work
        pem = os.path.join(w, "haproxy.pem")
        with open(pem, "w") as f:
            f.write(read_text(self.tls.cert) + read_text(self.tls.key))
        os.chmod(pem, 0o600)
        self.stats = os.path.join(w, "haproxy.sock")
        text = substitute(read_text(etc("haproxy", "pop3d.cfg")), [
            ("\tlog /dev/log local0\n", "\tstats socket %s mode 600 level admin\n" % self.stats),
            ("bind :110\n", "bind 127.0.0.1:%d\n" % self.p110),
            ("bind :995 ssl crt /etc/haproxy/pop.example.org.pem",
             "bind 127.0.0.1:%d ssl crt %s" % (self.p995, pem)),
            ("server pop1 10.0.0.2:110 send-proxy-v2 check inter 10s",
             "server pop1 %s:%d send-proxy-v2 check inter 500ms" % (SHARDS[0], port)),
            ("server pop1 10.0.0.2:110 send-proxy-v2-ssl check inter 10s",
             "server pop1 %s:%d send-proxy-v2-ssl check inter 500ms" % (SHARDS[0], port)),
        ])
        conf = os.path.join(w, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(text)
        self.spawn(["haproxy", "-db", "-f", conf], [self.p110, self.p995],
                   os.path.join(w, "haproxy.out"))
        self.wait_checks_ok()

    def wait_checks_ok(self):
        """Both servers UP after a health check that passed through pop3d:
        its LOCAL header accepted, the greeting and QUIT's +OK seen."""
        deadline = time.monotonic() + 30
        while True:
            try:
                stat = self.show_stat()
            except (FileNotFoundError, ConnectionRefusedError):
                # haproxy makes its stats socket after it listens
                self.assertLess(time.monotonic(), deadline, "no stats socket")
                time.sleep(0.1)
                continue
            rows = {r["pxname"]: r for r in stat if r["svname"] == "pop1"}
            if all(rows.get(b, {}).get("check_status") == "L7OK" and
                   rows[b].get("status") == "UP" for b in ("pop3d", "pop3d-tls")):
                return
            if time.monotonic() > deadline:
                self.fail("health checks not L7OK: %r" % rows)
            time.sleep(0.1)

    def show_stat(self):
        s = socket.socket(socket.AF_UNIX)
        s.connect(self.stats)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        s.close()
        lines = data.decode().splitlines()
        head = lines[0].lstrip("# ").split(",")
        return [dict(zip(head, l.split(","))) for l in lines[1:] if l]

    def test_health_checks_pass_through_pop3d(self):
        # setUp waited for the first; ten more connections, all checks
        deadline = time.monotonic() + 30
        while self.srv.log().count("Connection from") < 12:
            self.assertLess(time.monotonic(), deadline, "no health checks")
            time.sleep(0.1)
        self.wait_checks_ok()
        rows = [r for r in self.show_stat() if r["svname"] == "pop1"]
        self.assertTrue(all(int(r["chkfail"]) == 0 for r in rows), rows)
        log = self.srv.log()
        self.assertNotIn("invalid-proxy-header", log)
        self.assertNotIn("timed-out", log)

    def test_stls_through_haproxy(self):
        i = 0                            # on the first shard
        self.fetch_all("pop3://127.0.0.1:%d" % self.p110, i, "--ssl-reqd")
        self.assertRegex(self.srv.log(), r"(?m)login user=px000 tls=TLSv1\S+ "
                         r"from=127\.0\.0\.5 via=127\.0\.0\.1$")

    def test_tls_ended_at_haproxy_needs_no_P(self):
        i = 3                            # on the first shard
        self.fetch_all("pop3s://127.0.0.1:%d" % self.p995, i)
        self.assertRegex(self.srv.log(), r"(?m)login user=px003 tls=proxy "
                         r"from=127\.0\.0\.5 via=127\.0\.0\.1$")

    def test_cleartext_through_haproxy_refused(self):
        c = BoundClient("127.0.0.1", self.p110, CLIENT_ADDR)
        self.clients.append(c)
        self.greeted(c)
        self.assertReply(c.cmd("USER px000"), "-ERR cleartext login refused, use STLS")
        self.assertReply(c.cmd("QUIT"), "+OK")


if __name__ == "__main__":
    import e2e
    sys.exit(e2e.main(['e2e_proxy'], 'e2e_proxy'))
