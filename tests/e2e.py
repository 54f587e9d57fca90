#!/usr/bin/env python3
"""End-to-end tests of pop3d: the real binary through systemd-socket-activate,
a raw socket client and real POP3 clients.

    python3 tests/e2e.py                  # everything
    python3 tests/e2e.py -v               # one line per test
    python3 tests/e2e.py e2e_auth.Auth    # some modules, classes or tests

Ends with "e2e: N passed, N failed" on stdout; exits 1 if anything failed.
Must run as root.  Environment: POP3D=path overrides the binary (default
../pop3d); E2E_LOG=1 prints each server's log after its test; E2E_KEEP=1
keeps the temporary directory (mailboxes, passwd file, logs).
"""

import os
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

MODULES = ["e2e_transcript", "e2e_proto", "e2e_auth", "e2e_mbox", "e2e_procs",
           "e2e_clients", "e2e_hardening", "e2e_valgrind", "e2e_commit",
           "e2e_tls", "e2e_isolation", "e2e_crash", "e2e_proxy",
           "e2e_maildir", "e2e_logs", "e2e_install", "e2e_monitor",
           "e2e_index"]


class Result(unittest.TextTestResult):
    """Counts test methods: a skip or an expected failure counts as failed
    (nothing may go green by being skipped)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.passed = 0
        self.bad = set()

    def addSuccess(self, test):
        super().addSuccess(test)
        self.passed += 1

    def _bad(self, test):
        self.bad.add(test.id())

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._bad(test)

    def addError(self, test, err):
        super().addError(test, err)
        self._bad(test)

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._bad(test)

    def addExpectedFailure(self, test, err):
        super().addExpectedFailure(test, err)
        self._bad(test)

    def addUnexpectedSuccess(self, test):
        super().addUnexpectedSuccess(test)
        self._bad(test)

    def addSubTest(self, test, subtest, err):
        # a failed subtest fails its test
        super().addSubTest(test, subtest, err)
        if err is not None:
            self._bad(test)


def main(modules=MODULES, label="e2e"):
    """Runs the named tests (default: modules); prints
    "LABEL: N passed, N failed"; returns the exit status."""
    args = sys.argv[1:]
    verbosity = 1
    if args and args[0] == "-v":
        verbosity = 2
        args = args[1:]
    if os.geteuid() != 0:
        print("%s: must run as root (creates users, chowns files, reads "
              "/proc)" % label, file=sys.stderr)
        print("%s: 0 passed, 1 failed" % label)
        return 1
    if len(modules) == 1:
        # a module run alone takes names within it: "Sasl.test_x"
        args = [a if a.split(".")[0] in MODULES else modules[0] + "." + a
                for a in args]
    loader = unittest.TestLoader()
    suite = loader.loadTestsFromNames(args or modules)
    runner = unittest.TextTestRunner(stream=sys.stderr, verbosity=verbosity,
                                     resultclass=Result)
    t0 = time.monotonic()
    result = runner.run(suite)
    # a test whose tearDown failed after the test body passed counts once,
    # as failed
    failed = len(result.bad)
    passed = result.testsRun - failed
    if result.bad:
        print("failed tests:", file=sys.stderr)
        for t in sorted(result.bad):
            print("  " + t, file=sys.stderr)
    print("%s: run time %.0f s" % (label, time.monotonic() - t0), file=sys.stderr)
    print("%s: %d passed, %d failed" % (label, passed, failed))
    sys.stdout.flush()
    return 1 if failed or not result.testsRun else 0


if __name__ == "__main__":
    sys.exit(main())
