#!/usr/bin/env python3
"""Fault tests (docs/reliability.md, "Faults"): each runs tests/faults/faults.cu under the shim
with one fault and checks the defined outcome. Every run has a timeout: a hang fails the test.

  check_faults.py SHIM PROGRAM inject CALL N[,N...] STRICT EXPECT
      For each N, SIMCUDA_FAIL=CALL:N: the fault happens, the program exits 0, its stdout is
      identical to a plain run's, at most one op saw an error (and its retry succeeded), and
      EXPECT (a line the shim logs) appears on stderr of at least one of the runs.
  check_faults.py SHIM PROGRAM budget-lowered N
      The Nth cuMemCreate (a device chunk) fails: the engine lowers its budget to the N-1 chunks
      it has, the program sees no error and its output is identical.
  check_faults.py SHIM PROGRAM fork | exit-in-flight | free-evicting
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])

MiB = 1 << 20
TIMEOUT_S = 30  # each run; the programs take well under a second
BUDGET_MIB = 16
# 4 MiB buffers: 3x the budget, 4x swapped through the 64 MiB host pool at most.
SWAP_ARGS = ["swap", "12", "2"]


def run(cmd, extra, shim=None):
    env = dict(os.environ)
    env.update({"SIMCUDA_MEMORY": "64MiB"})
    if shim is not None:
        env.update({"LD_PRELOAD": shim, "OVERSUB_DEVICE_BUDGET": f"{BUDGET_MIB}MiB", "OVERSUB_HOST_LIMIT": "64MiB"})
    env.update(extra)
    try:
        return subprocess.run(cmd, env=program_env(env), capture_output=True, text=True, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        print(f"check_faults: {' '.join(cmd)} with {extra} did not finish within {TIMEOUT_S} s (a hang)")
        sys.exit(1)


def fail(message, proc=None):
    print(f"check_faults: FAIL: {message}")
    if proc is not None:
        print(f"--- status {proc.returncode}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}")
    return 1


def stats_of(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def inject(shim, program, call, nths, strict, expect):
    plain = run([program] + SWAP_ARGS, {})
    if plain.returncode != 0:
        return fail("plain run failed", plain)
    seen = False
    for nth in nths.split(","):
        proc = run([program] + SWAP_ARGS, {"SIMCUDA_FAIL": f"{call}:{nth}", "OVERSUB_STRICT": strict,
                                           "SIMCUDA_JITTER": "1"}, shim)
        retries = len(re.findall(r"^retry after ", proc.stderr, re.M))
        print(f"{call}:{nth}: status {proc.returncode}, retries {retries}, "
              f"logged '{expect}': {expect in proc.stderr}")
        if f"simcuda: injected failure: {call} call {nth}" not in proc.stderr:
            return fail(f"the fault {call}:{nth} did not happen (too few calls?)", proc)
        if proc.returncode != 0:
            return fail(f"{call}:{nth}: exit status {proc.returncode}", proc)
        if proc.stdout != plain.stdout:
            return fail(f"{call}:{nth}: output differs from the plain run's:\n{plain.stdout}", proc)
        if retries > 1:
            return fail(f"{call}:{nth}: {retries} ops failed for one fault", proc)
        seen = seen or expect in proc.stderr
    if not seen:
        return fail(f"no run logged '{expect}': the fault never hit that path")
    print("ok")
    return 0


def budget_lowered(shim, program, nth):
    plain = run([program] + SWAP_ARGS, {})
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        proc = run([program] + SWAP_ARGS, {"SIMCUDA_FAIL": f"cuMemCreate:{nth}", "OVERSUB_STRICT": "1",
                                           "OVERSUB_STATS": stats_path, "SIMCUDA_JITTER": "1"}, shim)
        if proc.returncode != 0 or proc.stdout != plain.stdout or "retry after" in proc.stderr:
            return fail(f"expected identical output and no error seen by the program; plain:\n{plain.stdout}", proc)
        lowered = (int(nth) - 1) * 2
        if f"device memory ran out at {lowered} MiB" not in proc.stderr:
            return fail(f"no 'device memory ran out at {lowered} MiB' on stderr", proc)
        stats = stats_of(stats_path)
        if stats["peak_device_bytes"] > lowered * MiB:
            return fail(f"peak device {stats['peak_device_bytes']} above the lowered budget {lowered} MiB", proc)
    print(f"budget lowered to {lowered} MiB, output identical: ok")
    return 0


def fork(shim, program):
    # In a sanitizer build, LeakSanitizer runs at the child's exit too, and a child of fork()
    # has only the forking thread: everything the parent's other threads (the simulated
    # streams, the planner) hold looks leaked, and LeakSanitizer says itself that these
    # leaks are false ("Running thread ... was not suspended"). Leaks are checked by every
    # other test of the asan setup; this one checks how the child exits.
    quiet_leaks = {"ASAN_OPTIONS": "detect_leaks=0"} if os.environ.get("SANITIZER_RUNTIME") else {}
    proc = run([program, "fork", "8"], {"OVERSUB_STRICT": "1", "SIMCUDA_JITTER": "1", **quiet_leaks}, shim)
    plain = run([program, "fork", "8"], quiet_leaks)
    if proc.returncode != 0 or "child exited: 0" not in proc.stdout or "child: computed" not in proc.stdout:
        return fail("the child did not exit 0, or the parent failed", proc)
    if proc.stdout != plain.stdout:
        return fail(f"output differs from the plain run's:\n{plain.stdout}", proc)
    # The child does no engine work at exit (residency.cpp, start_if_enabled): only the parent
    # reports. Engine work there could wait on a lock held at the fork by a thread the child lacks.
    if proc.stderr.count("oversub: peak device") != 1:
        return fail("expected one exit report (the parent's), not the child's too", proc)
    print("child exited 0 without engine work, parent's data intact: ok")
    return 0


def exit_in_flight(shim, program):
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        # Long jitter delays keep the eviction copies queued when main returns.
        proc = run([program, "exit-in-flight", "12"], {"OVERSUB_STRICT": "1", "OVERSUB_STATS": stats_path,
                                                      "SIMCUDA_JITTER": "1", "SIMCUDA_JITTER_MAX_US": "20000"}, shim)
        if proc.returncode != 0:
            return fail("exit with transfers in flight did not exit 0", proc)
        stats = stats_of(stats_path)
        if stats["evictions"] == 0:
            return fail(f"nothing was evicted: the test tests nothing ({stats})", proc)
    print(f"exited 0 with {stats['evictions']} evictions started: ok")
    return 0


def free_evicting(shim, program):
    env = {"OVERSUB_STRICT": "1", "SIMCUDA_JITTER": "1", "SIMCUDA_JITTER_MAX_US": "2000"}
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        # First only the frees: some of them must find their chunk's eviction in flight.
        proc = run([program, "free-evicting", "12", "stop"], env | {"OVERSUB_STATS": stats_path}, shim)
        if proc.returncode != 0:
            return fail("freeing while evicting failed", proc)
        stats = stats_of(stats_path)
        if stats["evictions_cancelled"] == 0:
            return fail(f"no free found an eviction in flight: the test tests nothing ({stats})", proc)
    plain = run([program, "free-evicting", "12"], {})
    proc = run([program, "free-evicting", "12"], env, shim)
    if proc.returncode != 0 or proc.stdout != plain.stdout:
        return fail(f"expected the plain run's output:\n{plain.stdout}", proc)
    print(f"{stats['evictions_cancelled']} frees found their eviction in flight; data intact: ok")
    return 0


def main(argv):
    commands = {"inject": inject, "budget-lowered": budget_lowered, "fork": fork, "exit-in-flight": exit_in_flight,
                "free-evicting": free_evicting}
    if len(argv) < 4 or argv[3] not in commands:
        print(__doc__, file=sys.stderr)
        return 2
    return commands[argv[3]](argv[1], argv[2], *argv[4:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
