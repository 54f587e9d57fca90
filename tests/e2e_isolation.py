"""What each process holds and may do: TLS ciphers and the key file's
owner, the seccomp filters under job control and their argument checks,
the pre-login deadline, the descriptors of the children, passwords and
the TLS key in the memory of the processes that must not have them, and
the maildrop process's Landlock rule."""

import os
import re
import signal
import socket
import subprocess
import time

import pop3test as pt
from pop3test import Pop3TestCase, plain_mbox, password, proc_comm, proc_stat
from e2e_tls import TlsCase, openssl

CRASHTEST = os.path.join(pt.TOP_DIR, "pop3d-crashtest")


class RsaPair:
    """An RSA key pair (static RSA suites need one) and its secret
    numbers, to look for in process memory."""

    _instance = None

    @classmethod
    def get(cls):
        if cls._instance is None:
            cls._instance = RsaPair(pt.Env.get())
        return cls._instance

    def __init__(self, env):
        d = env.new_dir("rsa", 0o755)
        self.key = os.path.join(d, "key.pem")
        self.cert = os.path.join(d, "cert.pem")
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.key,
                "-out", self.cert, "-subj", "/CN=localhost",
                "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-days", "30")
        os.chmod(self.key, 0o600)
        text = openssl("rsa", "-in", self.key, "-noout", "-text").stdout.decode()
        self.prime1 = self.number(text, "prime1")
        # a line from the middle of the PEM text
        pem = open(self.key).read().splitlines()
        self.pem_line = pem[len(pem) // 2].encode()

    @staticmethod
    def number(text, name):
        m = re.search(r"^%s:\n((?:\s+[0-9a-f:]+\n)+)" % name, text, re.M)
        digits = re.sub(r"[^0-9a-f]", "", m.group(1))
        return bytes.fromhex(digits).lstrip(b"\0")


class Ciphers(TlsCase):

    def setUp(self):
        super().setUp()
        self.rsa = RsaPair.get()

    def s_client(self, port, cipher):
        argv = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-tls1_2",
                "-cipher", cipher + "@SECLEVEL=0", "-CAfile", self.rsa.cert,
                "-ign_eof", "-crlf"]
        return self.run_tool(argv, input=b"QUIT\n", timeout=30)

    def test_static_rsa_and_cbc_sha_refused_ecdhe_gcm_works(self):
        srv = self.tls_server(implicit=True, key=self.rsa.key, cert=self.rsa.cert)
        for cipher in ("AES128-SHA", "ECDHE-RSA-AES128-SHA", "AES128-GCM-SHA256",
                       "CAMELLIA128-SHA"):
            p = self.s_client(srv.port, cipher)
            self.assertNotIn(b"+OK pop3d ready", p.stdout, cipher)
        p = self.s_client(srv.port, "ECDHE-RSA-AES128-GCM-SHA256")
        self.assertIn(b"+OK pop3d ready", p.stdout, p.stderr)
        self.assertRegex(p.stdout, rb"Cipher\s*: ECDHE-RSA-AES128-GCM-SHA256\n")
        self.assertCleanExit(srv, count=5)


class KeyOwner(TlsCase):

    def key_of(self, uid):
        path = os.path.join(self.spool, "key-%d.pem" % uid)
        with open(self.tls.key, "rb") as src, open(path, "wb") as dst:
            dst.write(src.read())
        os.chown(path, uid, 0)
        os.chmod(path, 0o600)
        return path

    def test_key_not_owned_by_root_refused(self):
        key = self.key_of(pt.uid_of("alice"))
        rc, err = self.check_config("-c", self.tls.cert, "-k", key)
        self.assertEqual(rc, 1, err)
        self.assertIn("key file must be owned by root", err)
        srv = self.tls_server(implicit=True, key=key)
        c = self.connect(srv, greeting=False)
        data, closed = self.read_to_close(c, timeout=10)
        self.assertEqual((data, closed), (b"", True))
        self.assertTrue(srv.wait_idle())
        self.assertIn("key file must be owned by root", srv.log())
        rc, err = self.check_config("-c", self.tls.cert, "-k", self.key_of(0))
        self.assertEqual((rc, err.strip()), (0, "configuration OK"))
