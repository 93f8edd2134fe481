#!/usr/bin/env python3
"""Runs a program and checks how it ended.

  expect.py [--signal NAME | --exit N] [--stdout-has TEXT]... [--env K=V]... -- CMD ARGS...

Exit 0 when every expectation holds; otherwise print what happened and exit 1.
"""
import argparse
import os
import signal
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--signal", help="expected terminating signal, e.g. SIGSEGV")
    parser.add_argument("--exit", type=int, default=None, help="expected exit status (default 0)")
    parser.add_argument("--stdout-has", action="append", default=[], help="text stdout must contain")
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
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    problems = []
    if args.signal:
        want = -int(getattr(signal, args.signal))
        if proc.returncode != want:
            problems.append(f"expected death by {args.signal}, got return code {proc.returncode}")
    else:
        want = 0 if args.exit is None else args.exit
        if proc.returncode != want:
            problems.append(f"expected exit status {want}, got {proc.returncode}")
    for text in args.stdout_has:
        if text not in proc.stdout:
            problems.append(f"stdout lacks {text!r}")
    sys.stdout.write(proc.stdout)
    sys.stderr.write(proc.stderr)
    for p in problems:
        print(f"expect.py: {p}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
