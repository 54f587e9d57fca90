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


if __name__ == "__main__":
    import e2e
    sys.exit(e2e.main(['e2e_proxy'], 'e2e_proxy'))
