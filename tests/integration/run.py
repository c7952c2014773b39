#!/usr/bin/python3
"""Runs every tests/integration/test_*.py module (or the ones named) and prints one closing line
'N passed, N failed, N skipped'. Exit status 0 only if nothing failed."""
import os
import sys
import time
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)


class Result(unittest.TextTestResult):
    """Also records how long each test took, so the slow ones can be named at the end."""
    durations = []

    def startTest(self, test):
        self._started = time.monotonic()
        super().startTest(test)

    def stopTest(self, test):
        Result.durations.append((time.monotonic() - self._started, test.id()))
        super().stopTest(test)


def main():
    loader = unittest.TestLoader()
    names = sys.argv[1:]
    if names:
        suite = unittest.TestSuite(loader.loadTestsFromName(n.removesuffix(".py")) for n in names)
    else:
        suite = loader.discover(here, pattern="test_*.py", top_level_dir=here)
    runner = unittest.TextTestRunner(verbosity=2, resultclass=Result, stream=sys.stdout)
    res = runner.run(suite)
    slow = sorted(Result.durations, reverse=True)[:10]
    if slow:
        print("slowest tests:")
        for d, name in slow:
            print(f"  {d:6.1f}s {name}")
    failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses)
    # A class skipped or failing in setUpClass is reported once, by a placeholder that is not
    # a test that ran: only real tests count against testsRun.
    ran = [t for t, _ in res.failures + res.errors + res.skipped] + list(res.unexpectedSuccesses)
    passed = res.testsRun - sum(isinstance(t, unittest.TestCase) for t in ran)
    print(f"integration: {passed} passed, {failed} failed, {len(res.skipped)} skipped")
    return 0 if failed == 0 and res.testsRun > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
