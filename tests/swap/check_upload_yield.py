#!/usr/bin/env python3
"""Background evictions wait for the program's upload on the link.

  check_upload_yield.py SHIM PROGRAM ROUNDS

Runs upload_yield.cu under the shim (lru, a 128 MiB budget, strict, jitter on)
and checks that every buffer held its data (PASS) and that OVERSUB_STATS
counts at least one upload waited for (Note [Background evictions yield to
uploads] in shim/engine/residency.cpp). Each round gives the shim one chance,
which depends on timing: on an idle machine every round counts; with four
copies of this test on two cores, about one round in seven did not (the
upload done before the kernel's headroom was kept). One in ROUNDS suffices.
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])


def main():
    shim, program, rounds = sys.argv[1], sys.argv[2], sys.argv[3]
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        env = dict(os.environ, LD_PRELOAD=shim, OVERSUB_POLICY="lru", OVERSUB_DEVICE_BUDGET="128MiB",
                   OVERSUB_STRICT="1", OVERSUB_STATS=stats_path, SIMCUDA_MEMORY="256MiB", SIMCUDA_JITTER="1")
        run = subprocess.run([program, rounds], env=program_env(env), capture_output=True, text=True, timeout=600)
        print(run.stdout, end="")
        print(run.stderr, end="", file=sys.stderr)
        if run.returncode != 0 or "PASS" not in run.stdout:
            print(f"check_upload_yield: the program failed (status {run.returncode})", file=sys.stderr)
            return 1
        with open(stats_path, encoding="utf-8") as f:
            stats = json.load(f)
    print(json.dumps(stats))
    if stats["evictions"] == 0:
        print("check_upload_yield: nothing was evicted: the budget does not oversubscribe", file=sys.stderr)
        return 1
    if stats["uploads_yielded_to"] < 1:
        print(f"check_upload_yield: no background eviction waited for any of the {rounds} uploads",
              file=sys.stderr)
        return 1
    print(f"uploads waited for: {stats['uploads_yielded_to']} of {rounds}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
