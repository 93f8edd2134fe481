#!/usr/bin/env python3
"""Checks how the simulated runtime and the test programs are linked.

  check_linkage.py RUNTIME_SO PROGRAM...

- The runtime must not link the driver: no NEEDED libcuda.so.1 and no
  undefined cu* symbols. It may reach the driver only through
  dlopen("libcuda.so.1") + cuGetProcAddress_v2 (DESIGN.md, "Interception").
- Every program must be linked against the toolkit's real libcudart.so.13:
  NEEDED libcudart.so.13 and runtime symbols bound to version libcudart.so.13.
"""
import re
import subprocess
import sys


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def main() -> int:
    runtime, programs = sys.argv[1], sys.argv[2:]
    problems = []
    needed = [line for line in run("readelf", "-d", runtime).splitlines() if "(NEEDED)" in line]
    for library in ("libcuda.so", "libcudart.so"):
        if any(library in line for line in needed):
            problems.append(f"{runtime} has a NEEDED entry for {library}")
    undefined = run("nm", "-D", "--undefined-only", runtime)
    driver_refs = [line.split()[-1] for line in undefined.splitlines() if re.search(r"\bcu[A-Z]\w*", line)]
    if driver_refs:
        problems.append(f"{runtime} references driver symbols directly: {driver_refs}")
    if "cuGetProcAddress_v2" not in run("strings", runtime):
        problems.append(f"{runtime} never names cuGetProcAddress_v2")
    for program in programs:
        if "libcudart.so.13" not in run("readelf", "-d", program):
            problems.append(f"{program} is not linked against libcudart.so.13")
        versioned = [l for l in run("nm", "-D", "--undefined-only", program).splitlines() if "@libcudart.so.13" in l]
        if not versioned:
            problems.append(f"{program} has no symbol bound to version libcudart.so.13")
    for p in problems:
        print(f"check_linkage: {p}", file=sys.stderr)
    print(f"checked {runtime} and {len(programs)} programs: {'FAIL' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
