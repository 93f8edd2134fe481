#!/usr/bin/env python3
"""Test (d): a launch whose pointers sit inside a struct passed by value is
attributed to exactly the buffers in the struct.

  check_struct_params.py SHIM PROGRAM TRACE_PATH
"""
import os
import re
import subprocess
import sys

import trace_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])


def main() -> int:
    shim, program, trace_path = sys.argv[1:4]
    env = program_env(dict(os.environ, LD_PRELOAD=shim, OVERSUB_TRACE=trace_path, OVERSUB_MODE="passthrough"))
    run = subprocess.run([program], env=env, capture_output=True, text=True, timeout=300)
    print(run.stdout, end="")
    if run.returncode != 0 or "PASS" not in run.stdout:
        print(run.stderr, end="", file=sys.stderr)
        print("check_struct_params: the program failed under the shim", file=sys.stderr)
        return 1
    tensors = {(int(a, 16), int(b)) for a, b in re.findall(r"tensor \d at 0x([0-9a-f]+) bytes (\d+)", run.stdout)}
    unused = int(re.search(r"unused at 0x([0-9a-f]+)", run.stdout).group(1), 16)
    t = trace_file.read(trace_path)
    kernels = [o for o in t.ops if o.kind == "kernel" and "scale_all" in o.name]
    problems = []
    if len(kernels) != 1:
        problems.append(f"expected one scale_all launch in the trace, found {len(kernels)}")
    else:
        seen = {(address, size) for address, size, _ in kernels[0].ranges}
        if seen != tensors:
            problems.append(f"kernel ranges {sorted(seen)} differ from the struct's tensors {sorted(tensors)}")
        if any(address == unused for address, _ in seen):
            problems.append("the unused buffer was attributed to the kernel")
    for p in problems:
        print(f"check_struct_params: {p}", file=sys.stderr)
    print(f"struct params: {'FAIL' if problems else 'ok'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
