#!/usr/bin/python3
"""Runs ddlguard's integration tests.

    /usr/bin/python3 tests/integration/run.py [-k PATTERN]... [--direct] [--keep] [--no-build]

Ends with exactly one line `integration: N passed, N failed[, N skipped]` and exits 0 only if
nothing failed. Test methods are counted; a class-level failure (e.g. a sanitizer report at
ddlguard's shutdown) counts as one more failure. See harness.py for the environment variables.
"""

import argparse
import faulthandler
import os
import subprocess
import sys
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PER_TEST_TIMEOUT = 240      # seconds; the watchdog then kills ddlguard to unblock the test


def reexec_with_system_python():
    """Only Debian's /usr/bin/python3 sees python3-psycopg2."""
    if os.path.realpath(sys.executable) != os.path.realpath('/usr/bin/python3') \
            and os.path.exists('/usr/bin/python3') and not os.environ.get('DDLG_TEST_REEXEC'):
        os.environ['DDLG_TEST_REEXEC'] = '1'
        os.execv('/usr/bin/python3', ['/usr/bin/python3'] + sys.argv)


def ensure_dependencies():
    missing = []
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        missing.append('python3-psycopg2')
    for path in ('/usr/lib/postgresql/15/bin/initdb', '/usr/share/java/postgresql.jar',
                 '/usr/bin/javac', '/usr/bin/openssl', '/usr/bin/cc'):
        if not os.path.exists(path):
            missing.append(path)
    if subprocess.run(['pkg-config', '--exists', 'libpq'], capture_output=True).returncode != 0:
        missing.append('libpq-dev')
    if missing:
        print(f'run.py: missing {", ".join(missing)}; running scripts/install-deps.sh', flush=True)
        subprocess.run(['bash', os.path.join(REPO, 'scripts', 'install-deps.sh')], check=True)


def ensure_binary(no_build):
    if os.environ.get('DDLG_TEST_DIRECT') == '1' or os.environ.get('DDLGUARD_BIN'):
        return
    if os.access(os.path.join(REPO, 'build-asan', 'ddlguard'), os.X_OK) or no_build:
        return
    print('run.py: build-asan/ddlguard is missing; running scripts/build.sh --asan', flush=True)
    p = subprocess.run(['bash', os.path.join(REPO, 'scripts', 'build.sh'), '--asan'])
    if p.returncode != 0:
        print('run.py: the build failed; the tests will report ddlguard as missing', flush=True)


def iter_tests(suite):
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from iter_tests(t)
        else:
            yield t


def filtered(suite, patterns):
    out = unittest.TestSuite()
    for t in iter_tests(suite):
        if not patterns or any(p in t.id() for p in patterns):
            out.addTest(t)
    return out


class Result(unittest.TestResult):
    """Prints one line per test and counts test methods (plus class-level failures)."""

    def __init__(self, class_sizes):
        super().__init__()
        self.class_sizes = class_sizes
        self.passed = 0
        self.failed = 0
        self.skipped_n = 0
        self.reports = []
        self.failed_with_subtests = set()
        self.t0 = 0.0
        self.current = None

    def startTest(self, test):
        super().startTest(test)
        self.current = test
        self.t0 = time.monotonic()
        watchdog.arm(test.id())

    def stopTest(self, test):
        watchdog.disarm()
        super().stopTest(test)

    def _line(self, word, test):
        print(f'{word:5} {test.id()} ({time.monotonic() - self.t0:.1f}s)', flush=True)

    def addSuccess(self, test):
        self.passed += 1
        self._line('ok', test)

    def _bad(self, word, test, err):
        text = self._exc_info_to_string(err, test)
        desc = test.id() if hasattr(test, '_testMethodName') else str(test)
        if desc in self.failed_with_subtests:
            pass                      # already counted through its subtests
        elif not hasattr(test, '_testMethodName') and desc.startswith('setUpClass'):
            # the class never ran: every one of its tests counts as failed
            cls = desc[desc.index('(') + 1:desc.rindex(')')]
            self.failed += self.class_sizes.get(cls, 1)
        else:
            self.failed += 1
        self.reports.append((word, desc, text))
        print(f'{word:5} {desc}' + (f' ({time.monotonic() - self.t0:.1f}s)'
                                    if hasattr(test, '_testMethodName') else ''), flush=True)

    def addFailure(self, test, err):
        self._bad('FAIL', test, err)

    def addError(self, test, err):
        self._bad('ERROR', test, err)

    def addSubTest(self, test, subtest, err):
        """A failed subtest fails its test method (counted once); unittest then reports no
        addSuccess for that method."""
        if err is None:
            return
        if test.id() not in self.failed_with_subtests:
            self.failed_with_subtests.add(test.id())
            self.failed += 1
        word = 'FAIL' if issubclass(err[0], test.failureException) else 'ERROR'
        self.reports.append((word, subtest.id(), self._exc_info_to_string(err, test)))
        print(f'{word:5} {subtest.id()}', flush=True)

    def addSkip(self, test, reason):
        self.skipped_n += 1
        print(f'skip  {test.id()}: {reason}', flush=True)

    def addExpectedFailure(self, test, err):
        self.passed += 1

    def addUnexpectedSuccess(self, test):
        self._bad('FAIL', test, (AssertionError, AssertionError('unexpected success'), None))

    def summary(self):
        s = f'{LABEL}: {self.passed} passed, {self.failed} failed'
        if self.skipped_n:
            s += f', {self.skipped_n} skipped'
        return s


class Watchdog:
    """Kills ddlguard if one test runs too long (so a client blocked on a hung proxy gets EOF),
    and ends the run if the test still does not finish."""

    def __init__(self):
        self.cv = threading.Condition()
        self.test = None
        self.deadline = None
        self.result = None
        threading.Thread(target=self._loop, daemon=True).start()

    def arm(self, test_id):
        with self.cv:
            self.test, self.deadline = test_id, time.monotonic() + PER_TEST_TIMEOUT
            self.cv.notify()

    def disarm(self):
        with self.cv:
            self.test = self.deadline = None

    def _loop(self):
        stage = 0
        while True:
            with self.cv:
                self.cv.wait(5)
                if self.deadline is None or time.monotonic() < self.deadline:
                    stage = 0
                    continue
                test = self.test
            import harness
            if stage == 0:
                print(f'watchdog: {test} exceeded {PER_TEST_TIMEOUT}s; killing ddlguard', flush=True)
                harness.kill_live_proxies()
                stage = 1
                with self.cv:
                    self.deadline = time.monotonic() + 60
            else:
                print(f'watchdog: {test} is still stuck; aborting the run', flush=True)
                faulthandler.dump_traceback(all_threads=True)
                if self.result:
                    self.result.failed += 1
                    print(self.result.summary(), flush=True)
                harness.cleanup_all()
                harness.remove_workdir(keep=True)
                os._exit(1)


watchdog = None


LABEL = 'integration'


def main(suite_dir=HERE, label='integration'):
    """Also runs tests/clients (suite_dir) with the same harness, under another label."""
    global LABEL
    LABEL = label
    reexec_with_system_python()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('-k', action='append', default=[], help='run tests whose id contains this')
    ap.add_argument('--direct', action='store_true', help='point clients at PostgreSQL (DDLG_TEST_DIRECT=1)')
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    ap.add_argument('--no-build', action='store_true', help='do not build a missing build-asan/ddlguard')
    ap.add_argument('--list', action='store_true', help='list the tests and exit')
    args = ap.parse_args()
    if args.direct:
        os.environ['DDLG_TEST_DIRECT'] = '1'
    if args.keep:
        os.environ['DDLG_TEST_KEEP'] = '1'
    os.chdir(REPO)
    sys.path.insert(0, HERE)
    if suite_dir != HERE:
        sys.path.insert(0, suite_dir)

    ensure_dependencies()
    suite = unittest.defaultTestLoader.discover(suite_dir, pattern='test_*.py', top_level_dir=suite_dir)
    suite = filtered(suite, args.k)
    tests = list(iter_tests(suite))
    if args.list:
        for t in tests:
            print(t.id())
        return 0
    ensure_binary(args.no_build)

    import harness
    global watchdog
    watchdog = Watchdog()
    class_sizes = {}
    for t in tests:
        cls = f'{type(t).__module__}.{type(t).__qualname__}'
        class_sizes[cls] = class_sizes.get(cls, 0) + 1
    result = Result(class_sizes)
    watchdog.result = result
    started = time.monotonic()
    print(f'{LABEL}: {len(tests)} tests, ddlguard = '
          f'{"(direct to PostgreSQL)" if harness.DIRECT else harness.ddlguard_bin()}', flush=True)
    try:
        suite.run(result)
    except KeyboardInterrupt:
        print('interrupted', flush=True)
        result.failed += 1
    finally:
        harness.cleanup_all()

    for word, desc, text in result.reports:
        print('=' * 78)
        print(f'{word}: {desc}')
        print('-' * 78)
        print(text.rstrip())
    if result.reports:
        print('=' * 78)
    harness.remove_workdir(keep=bool(result.failed))
    print(f'{LABEL}: ran in {time.monotonic() - started:.0f}s', flush=True)
    print(result.summary(), flush=True)
    return 0 if result.failed == 0 else 1


if __name__ == '__main__':
    sys.exit(main())
