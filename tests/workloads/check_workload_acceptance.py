#!/usr/bin/env python3
"""Acceptance checks of a reference training program (issue 3), on the simulated GPU.

  check_workload_acceptance.py output      PROGRAM [FLAG...]
      `--steps 5 FLAGS`: exactly five `step N loss X` lines (N consecutive), the last loss
      below the first, then `peak_device_bytes N`, then `checksum HEX`, and nothing else.
      The same bytes on stdout with SIMCUDA_JITTER=1 under SIMCUDA_SEED=1 and 2, and the
      same step lines and checksum with `--allocator pool` (peak_device_bytes may differ).
  check_workload_acceptance.py usage       PROGRAM
      An unknown flag, a flag without a value and a non-number each exit 2 with a usage
      line naming the program on stderr, and print nothing on stdout.
  check_workload_acceptance.py linkage     PROGRAM LIBRARY...
      `readelf -d PROGRAM` lists each LIBRARY as NEEDED (the toolkit's sonames), and no
      library of ours: the program is linked as a user would link it.

Each failed check prints `check_workload_acceptance: PROGRAM: what failed` to stderr and
the script exits 1.
"""
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])

STEPS = 5
STEP_LINE = re.compile(r"step (\d+) loss (-?\d+\.\d+)")
PEAK_LINE = re.compile(r"peak_device_bytes (\d+)")
CHECKSUM_LINE = re.compile(r"checksum ([0-9a-f]{16})")


class Failed(Exception):
    pass


def run(program, flags, extra_env=None, expect_rc=0):
    # The plain run must not inherit a jitter setting from whoever runs the tests.
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIMCUDA_")}
    env.update(extra_env or {})
    r = subprocess.run([program, *flags], env=program_env(env), capture_output=True, text=True, timeout=300)
    if expect_rc is not None and r.returncode != expect_rc:
        raise Failed(f"`{' '.join(flags)}` {extra_env or ''} exited {r.returncode}, expected {expect_rc}; "
                     f"stderr: {r.stderr.strip()[-2000:]}")
    return r


def parse_output(stdout, what):
    """The step lines, peak bytes and checksum of a run's stdout, in the fixed layout."""
    lines = stdout.splitlines()
    if len(lines) != STEPS + 2:
        raise Failed(f"{what}: expected {STEPS} step lines, peak_device_bytes and checksum "
                     f"({STEPS + 2} lines), got {len(lines)}:\n{stdout}")
    steps = []
    for line in lines[:STEPS]:
        m = STEP_LINE.fullmatch(line)
        if not m:
            raise Failed(f"{what}: not a `step N loss X` line: {line!r}")
        steps.append((int(m.group(1)), float(m.group(2))))
    numbers = [n for n, _ in steps]
    if numbers != list(range(numbers[0], numbers[0] + STEPS)) or numbers[0] not in (0, 1):
        raise Failed(f"{what}: step numbers {numbers} are not consecutive from 0 or 1")
    if not PEAK_LINE.fullmatch(lines[STEPS]):
        raise Failed(f"{what}: line {STEPS + 1} should be `peak_device_bytes N`, got {lines[STEPS]!r}")
    if not CHECKSUM_LINE.fullmatch(lines[STEPS + 1]):
        raise Failed(f"{what}: the last line should be `checksum HEX` (16 hex digits), got {lines[STEPS + 1]!r}")
    return steps, lines


def check_output(program, flags):
    flags = ["--steps", str(STEPS), *flags]
    plain = run(program, flags)
    steps, lines = parse_output(plain.stdout, "plain run")
    first, last = steps[0][1], steps[-1][1]
    if not last < first:
        raise Failed(f"the loss did not fall: first {first}, last {last}")
    print(f"plain: {STEPS} steps, loss {first} -> {last}, {lines[-2]}, {lines[-1]}")
    for seed in ("1", "2"):
        jitter = run(program, flags, {"SIMCUDA_JITTER": "1", "SIMCUDA_SEED": seed})
        if jitter.stdout != plain.stdout:
            raise Failed(f"stdout under SIMCUDA_JITTER=1 SIMCUDA_SEED={seed} differs from the plain run:\n"
                         f"plain:\n{plain.stdout}jitter:\n{jitter.stdout}")
        print(f"SIMCUDA_JITTER=1 SIMCUDA_SEED={seed}: identical")
    pool = run(program, [*flags, "--allocator", "pool"])
    _, pool_lines = parse_output(pool.stdout, "--allocator pool")
    if pool_lines[:STEPS] != lines[:STEPS] or pool_lines[-1] != lines[-1]:
        raise Failed("--allocator pool gives other step lines or checksum than direct:\n"
                     f"direct:\n{plain.stdout}pool:\n{pool.stdout}")
    print(f"--allocator pool: same steps and checksum, {pool_lines[-2]}")


def check_usage(program):
    name = os.path.basename(program)
    for flags in (["--no-such-flag", "1"], ["--steps"], ["--steps", "many"], ["--allocator", "bump"]):
        r = run(program, flags, expect_rc=2)
        if not re.search(rf"^usage: {re.escape(name)} ", r.stderr, re.MULTILINE):
            raise Failed(f"`{' '.join(flags)}` exited 2 but printed no usage line: {r.stderr!r}")
        if r.stdout:
            raise Failed(f"`{' '.join(flags)}` printed on stdout: {r.stdout!r}")
        print(f"`{' '.join(flags)}`: exit 2, {r.stderr.strip().splitlines()[-1]}")


def check_linkage(program, libraries):
    dynamic = subprocess.run(["readelf", "-d", program], capture_output=True, text=True, check=True).stdout
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    missing = [lib for lib in libraries if lib not in needed]
    if missing:
        raise Failed(f"not linked against {missing}; NEEDED: {needed}")
    ours = [lib for lib in needed if "oversub" in lib or "simcuda" in lib]
    if ours:
        raise Failed(f"linked against our own libraries {ours}; a user's program would not be")
    runpath = re.findall(r"\((?:RPATH|RUNPATH)\).*\[([^\]]*)\]", dynamic)
    if any("simcuda" in p for p in runpath):
        raise Failed(f"its run path {runpath} points at the simulated GPU; it must come from LD_LIBRARY_PATH")
    print(f"NEEDED: {needed}")


def main() -> int:
    if len(sys.argv) < 3 or sys.argv[1] not in ("output", "usage", "linkage"):
        print(__doc__, file=sys.stderr)
        return 2
    mode, program, rest = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        if mode == "output":
            check_output(program, rest)
        elif mode == "usage":
            check_usage(program)
        else:
            check_linkage(program, rest)
    except Failed as failure:
        print(f"check_workload_acceptance: {os.path.basename(program)} {mode}: {failure}", file=sys.stderr)
        return 1
    print(f"{os.path.basename(program)} {mode}: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
