"""What every Python test of the suite needs before its first assertion: the paths ctest passes
in the environment (with the defaults a developer running a test by hand gets), the test and
exporter directories on sys.path, TensorFlow's log level, the built CLI, and one way to record
checks and end with "N passed, M failed" and the exit status.

    import harness                      # first: sets sys.path and the environment
    from harness import check, finish
    check(x == y, "what must hold", "detail printed when it does not")
    sys.exit(finish())
"""

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("MORSEL_SOURCE_DIR") or os.path.dirname(HERE)
SHARED = os.environ.get("MORSEL_SHARED") or os.path.join(os.path.dirname(ROOT), "shared")
FIXTURES = os.environ.get("MORSEL_FIXTURES", "")
EXPORTER = os.path.join(ROOT, "weights", "morsel_export.py")

for _p in (HERE, os.path.join(ROOT, "weights")):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def env_path(name):
    """A path ctest sets; a test run by hand without it fails with the variable's name."""
    v = os.environ.get(name, "")
    if not v:
        raise SystemExit(f"FAIL: ${name} is not set (ctest sets it; see test/CMakeLists.txt)")
    return v


def morsel_bin():
    """The built CLI from $MORSEL_BIN; a missing binary is a failure, never a skip."""
    p = os.environ.get("MORSEL_BIN", "")
    if not p or not os.path.isfile(p) or not os.access(p, os.X_OK):
        raise SystemExit(f"FAIL: MORSEL_BIN={p!r} is not an executable morsel CLI (build the C "
                         "engine first; ctest sets MORSEL_BIN)")
    return p


class Checks:
    """Counts checks; each prints `ok   what` or `FAIL what` and its detail."""

    def __init__(self):
        self.passed = 0
        self.failed = []

    def check(self, ok, what, detail=""):
        if ok:
            self.passed += 1
            print(f"ok   {what}", flush=True)
        else:
            self.failed.append(what)
            print(f"FAIL {what}" + (f"\n     {str(detail)[:3000]}" if detail else ""), flush=True)
        return bool(ok)

    def finish(self):
        """Prints the summary line; returns the exit status (1 on any failure or no check)."""
        print(f"{self.passed} passed, {len(self.failed)} failed")
        for what in self.failed:
            print(f"  FAILED: {what}")
        return 1 if self.failed or not self.passed else 0


_checks = Checks()
check = _checks.check
finish = _checks.finish


def counts():
    """(passed, failed) so far, for tests that print their own summary."""
    return _checks.passed, len(_checks.failed)
