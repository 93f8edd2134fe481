#!/usr/bin/env python3
"""Issue 4 (a): a reference training program preloaded with liboversub.so in passthrough
mode prints exactly what it prints without the shim: the same step losses, peak bytes and
parameter checksum, byte for byte.

  check_workload_passthrough.py SHIM PROGRAM [FLAG...]

OVERSUB_LOG=debug makes the shim announce itself on stderr, which shows it was loaded:
a run in which the preload silently failed would otherwise compare equal trivially.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])


def run(program, flags, env):
    r = subprocess.run([program, *flags], env=program_env(env), capture_output=True, text=True, timeout=300)
    return r


def main() -> int:
    shim, program, flags = sys.argv[1], sys.argv[2], sys.argv[3:]
    name = os.path.basename(program)
    base = {k: v for k, v in os.environ.items()
            if not k.startswith(("OVERSUB_", "SIMCUDA_", "WORKLOAD_")) and k != "LD_PRELOAD"}
    plain = run(program, flags, base)
    shimmed = run(program, flags, dict(base, LD_PRELOAD=shim, OVERSUB_MODE="passthrough", OVERSUB_LOG="debug"))
    problems = []
    if plain.returncode != 0:
        problems.append(f"the run without the shim exited {plain.returncode}: {plain.stderr.strip()[-2000:]}")
    if shimmed.returncode != 0:
        problems.append(f"the run under the shim exited {shimmed.returncode}: {shimmed.stderr.strip()[-2000:]}")
    if "oversub" not in shimmed.stderr:
        problems.append("the shim did not announce itself with OVERSUB_LOG=debug: was it preloaded? "
                        f"stderr: {shimmed.stderr.strip()[-2000:]!r}")
    if not problems and shimmed.stdout != plain.stdout:
        problems.append(f"stdout differs under the shim\nwithout the shim:\n{plain.stdout}"
                        f"with LD_PRELOAD={shim} OVERSUB_MODE=passthrough:\n{shimmed.stdout}")
    if not problems and "checksum" not in plain.stdout:
        problems.append(f"no checksum line in the output:\n{plain.stdout}")
    print(plain.stdout, end="")
    for p in problems:
        print(f"check_workload_passthrough: {name} {' '.join(flags)}: {p}", file=sys.stderr)
    print(f"{name} under the shim in passthrough mode: {'FAIL' if problems else 'bit-identical output'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
