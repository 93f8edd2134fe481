#!/usr/bin/env python3
"""Every test suite of the build is one that the test setups know about.

  check_suites.py BUILD_DIR SUITE...

The asan and tsan setups run only their own suite by leaving out every other
one by name (Note [Sanitizer builds] in meson.build); a suite missing from
that list would run, unsanitized, under --setup=asan as well.
"""
import json
import os
import sys


def main() -> int:
    build_dir, known = sys.argv[1], set(sys.argv[2:])
    with open(os.path.join(build_dir, "meson-info", "intro-tests.json")) as f:
        tests = json.load(f)
    # Meson names a suite "project:suite".
    suites = {suite.split(":", 1)[-1] for test in tests for suite in test["suite"]}
    unknown = sorted(suites - known)
    for suite in unknown:
        print(f"check_suites: suite '{suite}' is not in default_suites, opt_in_suites or sanitizer_suites "
              "(meson.build)", file=sys.stderr)
    print(f"{len(suites)} suites, {len(unknown)} unknown")
    return 1 if unknown else 0


if __name__ == "__main__":
    sys.exit(main())
