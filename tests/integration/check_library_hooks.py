#!/usr/bin/env python3
"""Issue 4: every cuBLAS and cuDNN entry point of the simulated libraries that
touches device memory is hooked. library_hooks.cu calls the ones added last
(the Async host <-> device copies, the fused convolution and the tensor
set/scale/transform) on 4 KiB buffers; each call must be one op of kind cublas
or cudnn in the trace, on the program's stream, with exactly these ranges.

  check_library_hooks.py SHIM PROGRAM TRACE_PATH
"""
import os
import re
import subprocess
import sys

import trace_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])

# (kind, name, [(buffer, bytes, access)]), in call order. Sizes are worked out
# in library_hooks.cu next to each call; "workspace" is the size it printed.
EXPECTED = [
    ("cublas", "cublasSetVectorAsync", [("vec", 112, "w")]),
    ("cublas", "cublasGetVectorAsync", [("vec", 76, "r")]),
    ("cublas", "cublasSetMatrixAsync", [("mat", 116, "w")]),
    ("cublas", "cublasGetMatrixAsync", [("mat", 108, "r")]),
    ("cudnn", "cudnnConvolutionBiasActivationForward",
     [("x", 200, "r"), ("w", 216, "r"), ("workspace", None, "rw"), ("z", 300, "r"), ("bias", 12, "r"),
      ("y", 300, "w")]),
    ("cudnn", "cudnnConvolutionBiasActivationForward",
     [("x", 200, "r"), ("w", 216, "r"), ("workspace", None, "rw"), ("bias", 12, "r"), ("y", 300, "w")]),
    ("cudnn", "cudnnConvolutionBiasActivationForward",
     [("x", 200, "r"), ("w", 216, "r"), ("workspace", None, "rw"), ("bias", 12, "r"), ("y", 300, "rw")]),
    ("cudnn", "cudnnTransformTensor", [("src", 96, "r"), ("dst", 256, "w")]),
    ("cudnn", "cudnnTransformTensor", [("src", 96, "r"), ("dst", 256, "rw")]),
    ("cudnn", "cudnnSetTensor", [("dst", 256, "w")]),
    ("cudnn", "cudnnScaleTensor", [("dst", 256, "rw")]),
]


def main() -> int:
    shim, program, trace_path = sys.argv[1:4]
    env = program_env(dict(os.environ, LD_PRELOAD=shim, OVERSUB_TRACE=trace_path, OVERSUB_MODE="passthrough"))
    run = subprocess.run([program], env=env, capture_output=True, text=True, timeout=300)
    print(run.stdout, end="")
    if run.returncode != 0 or "PASS" not in run.stdout:
        print(run.stderr, end="", file=sys.stderr)
        print("check_library_hooks: the program failed under the shim", file=sys.stderr)
        return 1
    buffers = {name: int(address, 16) for name, address in re.findall(r"^buffer (\w+) 0x([0-9a-f]+)$", run.stdout, re.M)}
    stream = int(re.search(r"^stream 0x([0-9a-f]+)$", run.stdout, re.M).group(1), 16)
    workspace_bytes = int(re.search(r"^workspace_bytes (\d+)$", run.stdout, re.M).group(1))

    t = trace_file.read(trace_path)
    problems = []
    if not t.complete:
        problems.append("trace has no end line")
    library_ops = [o for o in t.ops if o.kind in ("cublas", "cudnn")]
    if len(library_ops) != len(EXPECTED):
        problems.append(f"expected {len(EXPECTED)} library ops, found {len(library_ops)}: "
                        f"{[o.name for o in library_ops]}")
    for i, (op, (kind, name, ranges)) in enumerate(zip(library_ops, EXPECTED)):
        where = f"op {i} ({name})"
        if (op.kind, op.name) != (kind, name):
            problems.append(f"{where}: found {op.kind} {op.name}")
            continue
        if op.stream != stream:
            problems.append(f"{where}: on stream {op.stream:#x}, not the program's {stream:#x}")
        want = sorted((buffers[b], workspace_bytes if size is None else size, access) for b, size, access in ranges)
        seen = sorted(op.ranges)
        if seen != want:
            problems.append(f"{where}: ranges {[(hex(a), n, acc) for a, n, acc in seen]}, "
                            f"expected {[(hex(a), n, acc) for a, n, acc in want]}")
    for p in problems:
        print(f"check_library_hooks: {p}", file=sys.stderr)
    print(f"library hooks: {'FAIL' if problems else 'ok'} ({len(library_ops)} library ops)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
