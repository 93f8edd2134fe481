#!/usr/bin/env python3
"""Test (c): a program reaching the driver through dlopen+dlsym, through
cuGetProcAddress and through cudaGetDriverEntryPoint is intercepted every way.

  check_intercept_paths.py SHIM PROGRAM TRACE_PATH
"""
import os
import subprocess
import sys

import trace_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])

MiB = 1 << 20


def main() -> int:
    shim, program, trace_path = sys.argv[1:4]
    env = program_env(dict(os.environ, LD_PRELOAD=shim, OVERSUB_TRACE=trace_path, OVERSUB_MODE="passthrough"))
    run = subprocess.run([program], env=env, capture_output=True, text=True, timeout=300)
    print(run.stdout, end="")
    print(run.stderr, end="", file=sys.stderr)
    if run.returncode != 0 or "PASS" not in run.stdout:
        print("check_intercept_paths: the program failed under the shim", file=sys.stderr)
        return 1
    t = trace_file.read(trace_path)
    problems = []
    if not t.complete:
        problems.append("trace has no end line")
    for path, size in (("dlsym", 3 * MiB), ("cuGetProcAddress", 5 * MiB), ("cudaGetDriverEntryPoint", 7 * MiB)):
        allocs = [a for a in t.allocs if a[2] == size]
        if len(allocs) != 1:
            problems.append(f"{path}: expected one {size >> 20} MiB allocation in the trace, found {len(allocs)}")
            continue
        alloc_id, address, _, _ = allocs[0]
        memsets = [o for o in t.ops if o.kind == "memset" and (address, size, "w") in o.ranges]
        if len(memsets) != 1:
            problems.append(f"{path}: expected one memset writing [{address:#x}, +{size:#x}), found {len(memsets)}")
        if (alloc_id, address) not in t.frees:
            problems.append(f"{path}: the free of allocation {alloc_id} is missing")
    for p in problems:
        print(f"check_intercept_paths: {p}", file=sys.stderr)
    print(f"intercept paths: {'FAIL' if problems else 'ok'} ({len(t.allocs)} allocations, {len(t.ops)} ops)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
