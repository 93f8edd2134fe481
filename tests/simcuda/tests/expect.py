#!/usr/bin/env python3
"""Runs a program and checks how it ended.

  expect.py [--signal NAME | --exit N | --exit-nonzero] [--stdout-has TEXT]... [--stderr-has TEXT]...
            [--env K=V]... -- CMD ARGS...

Exit 0 when every expectation holds; otherwise print what happened and exit 1.
"""
import argparse
import os
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signal", help="expected terminating signal, e.g. SIGSEGV")
    parser.add_argument("--exit", type=int, default=None, help="expected exit status (default 0)")
    parser.add_argument("--exit-nonzero", action="store_true", help="expect an exit status other than 0")
    parser.add_argument("--stdout-has", action="append", default=[], help="text stdout must contain")
    parser.add_argument("--stderr-has", action="append", default=[], help="text stderr must contain")
    parser.add_argument("--env", action="append", default=[], help="K=V added to the environment")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given")
    env = dict(os.environ)
    for item in args.env:
        key, _, value = item.partition("=")
        env[key] = value
    proc = subprocess.run(command, env=program_env(env), capture_output=True, text=True, timeout=600)
    problems = []
    if args.signal:
        want = -int(getattr(signal, args.signal))
        if proc.returncode != want:
            problems.append(f"expected death by {args.signal}, got return code {proc.returncode}")
    elif args.exit_nonzero:
        if proc.returncode <= 0:
            problems.append(f"expected a non-zero exit status, got {proc.returncode}")
    else:
        want = 0 if args.exit is None else args.exit
        if proc.returncode != want:
            problems.append(f"expected exit status {want}, got {proc.returncode}")
    for text in args.stdout_has:
        if text not in proc.stdout:
            problems.append(f"stdout lacks {text!r}")
    for text in args.stderr_has:
        if text not in proc.stderr:
            problems.append(f"stderr lacks {text!r}")
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    for p in problems:
        print(f"expect.py: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
