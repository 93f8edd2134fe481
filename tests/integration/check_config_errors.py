#!/usr/bin/env python3
"""Issue 9, configuration errors: each OVERSUB_* and SIMCUDA_* variable, and
each pair of settings that contradict each other, on a real program.

  check_config_errors.py --list
  check_config_errors.py CASE --shim LIBOVERSUB --program PROGRAM --simcuda DIR --spy DIR --source-root DIR

A case holds bad environments and one good one. Each bad environment must stop
PROGRAM with exit status 2 and exactly one line on stderr, which names every
variable involved with its value (NAME='value') and the accepted form: for a
single bad value, the form docs/configuration.md or tests/simcuda/README.md
gives for it; for a contradiction, the remedy. A bad OVERSUB_* setting that
needs no device must stop the process before any call reaches the driver: the
run is repeated with the driver spy (driver_spy/) in libcuda.so.1's place,
which reports every call on stderr. The good environment must run PROGRAM to
its known checksum and do what it asks; run against the spy, it must show
driver calls, which proves that the spy would have seen them.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])

CHECKSUM = "checksum 2102385248.0"  # stream_sample's answer, as tests/simcuda/tests checks it


class Bad:
    """One bad environment: `env` are the settings the line must name with their
    values (NAME='value'), `context` further settings the run needs. `form` is
    the accepted form the line must give (None: the one documented for the
    case's variable); `also` further text it must hold. `start`: the check needs
    no device, so no call may reach the driver."""

    def __init__(self, env, form=None, start=True, also=(), context=None):
        self.env = env
        self.form = form
        self.start = start
        self.also = list(also)
        self.context = context or {}


class Case:
    def __init__(self, name, bads, good, shim=True, good_check=None):
        self.name = name
        self.bads = bads
        self.good = good
        self.shim = shim            # run under LD_PRELOAD=liboversub.so
        self.good_check = good_check


def trace_written(env, run):
    with open(env["OVERSUB_TRACE"], encoding="utf-8") as f:
        first = f.readline()
    return [] if first.startswith("v 2 oversub-trace") else [f"the trace does not start with a version line: {first!r}"]


def stats_written(env, run):
    with open(env["OVERSUB_STATS"], encoding="utf-8") as f:
        text = f.read()
    return [] if '"budget_bytes"' in text else [f"the stats file lacks budget_bytes: {text!r}"]


def budget_is(expected):
    def check(env, run):
        with open(env["OVERSUB_STATS"], encoding="utf-8") as f:
            got = json.load(f)["budget_bytes"]
        return [] if got == expected else [f"budget_bytes is {got}, expected {expected}"]
    return check


def stderr_has(text):
    def check(env, run):
        return [] if text in run.stderr else [f"stderr lacks {text!r}"]
    return check


def stderr_quiet(env, run):
    return [f"OVERSUB_LOG=quiet, yet stderr has {line!r}" for line in run.stderr.splitlines()]


def cases(tmp):
    """Every case. `tmp` is a scratch directory (paths in it need not exist)."""
    missing_dir = os.path.join(tmp, "no-such-dir")
    same = os.path.join(tmp, "run.out")
    passthrough = "which never limits, moves or unmaps memory"
    jitter_off = "has no effect without SIMCUDA_JITTER=1"
    return [
        # ---- one case per OVERSUB_* variable ----
        Case("OVERSUB_MODE", [Bad({"OVERSUB_MODE": "fast"}), Bad({"OVERSUB_MODE": "Swap"})],
             {"OVERSUB_MODE": "passthrough"}),
        Case("OVERSUB_DEVICE_BUDGET",
             [Bad({"OVERSUB_DEVICE_BUDGET": "12XB"}), Bad({"OVERSUB_DEVICE_BUDGET": "150%"}),
              Bad({"OVERSUB_DEVICE_BUDGET": "1MiB"}), Bad({"OVERSUB_DEVICE_BUDGET": ""})],
             {"OVERSUB_DEVICE_BUDGET": "32MiB", "OVERSUB_STATS": os.path.join(tmp, "budget.json")},
             good_check=budget_is(32 << 20)),
        Case("OVERSUB_HOST_LIMIT", [Bad({"OVERSUB_HOST_LIMIT": "lots"}), Bad({"OVERSUB_HOST_LIMIT": "2MiB"})],
             {"OVERSUB_HOST_LIMIT": "64MiB"}),
        Case("OVERSUB_STRICT", [Bad({"OVERSUB_STRICT": "yes"})], {"OVERSUB_STRICT": "1"}),
        Case("OVERSUB_POLICY", [Bad({"OVERSUB_POLICY": "fifo"})], {"OVERSUB_POLICY": "lookahead"}),
        Case("OVERSUB_LOOKAHEAD_OPS", [Bad({"OVERSUB_LOOKAHEAD_OPS": "-1"}), Bad({"OVERSUB_LOOKAHEAD_OPS": "many"}),
                                       Bad({"OVERSUB_LOOKAHEAD_OPS": "70000"})],
             {"OVERSUB_LOOKAHEAD_OPS": "64", "OVERSUB_POLICY": "lookahead"}),
        Case("OVERSUB_STATS",
             [Bad({"OVERSUB_STATS": ""}),
              Bad({"OVERSUB_STATS": os.path.join(missing_dir, "s.json")},
                  also=[f"{missing_dir}: No such file or directory"])],
             {"OVERSUB_STATS": os.path.join(tmp, "s.json")}, good_check=stats_written),
        Case("OVERSUB_TRACE",
             [Bad({"OVERSUB_TRACE": ""}), Bad({"OVERSUB_TRACE": tmp}, also=[f"{tmp}: is a directory"])],
             {"OVERSUB_TRACE": os.path.join(tmp, "t.trace")}, good_check=trace_written),
        Case("OVERSUB_LOG", [Bad({"OVERSUB_LOG": "loud"})], {"OVERSUB_LOG": "quiet"}, good_check=stderr_quiet),
        Case("unknown-OVERSUB-variable",
             [Bad({"OVERSUB_BUDGET": "1GiB"}, form="expected one of OVERSUB_MODE, OVERSUB_DEVICE_BUDGET",
                  also=["unknown variable"])],
             {"OVERSUB_DEVICE_BUDGET": "1GiB"}),
        # ---- one case per SIMCUDA_* variable (the simulator alone) ----
        Case("SIMCUDA_MEMORY", [Bad({"SIMCUDA_MEMORY": "lots"}), Bad({"SIMCUDA_MEMORY": "0"})],
             {"SIMCUDA_MEMORY": "64MiB", "SIMCUDA_REPORT": "1"}, shim=False,
             good_check=stderr_has("capacity 67108864")),
        Case("SIMCUDA_REPORT", [Bad({"SIMCUDA_REPORT": "yes"})], {"SIMCUDA_REPORT": "1"}, shim=False,
             good_check=stderr_has("simcuda: peak device bytes")),
        Case("SIMCUDA_JITTER", [Bad({"SIMCUDA_JITTER": "2"})], {"SIMCUDA_JITTER": "1"}, shim=False),
        Case("SIMCUDA_SEED", [Bad({"SIMCUDA_SEED": "-3"}, context={"SIMCUDA_JITTER": "1"})],
             {"SIMCUDA_JITTER": "1", "SIMCUDA_SEED": "7"}, shim=False),
        Case("SIMCUDA_JITTER_MAX_US", [Bad({"SIMCUDA_JITTER_MAX_US": "0"}, context={"SIMCUDA_JITTER": "1"})],
             {"SIMCUDA_JITTER": "1", "SIMCUDA_JITTER_MAX_US": "50"}, shim=False),
        Case("SIMCUDA_FAIL", [Bad({"SIMCUDA_FAIL": "cuMemCreate"}), Bad({"SIMCUDA_FAIL": "cuLaunchKernel:3"}),
                              Bad({"SIMCUDA_FAIL": "cuMemMap:0"})],
             {"SIMCUDA_FAIL": "off"}, shim=False),
        Case("unknown-SIMCUDA-variable",
             [Bad({"SIMCUDA_MEMROY": "64MiB"}, form="expected one of SIMCUDA_MEMORY, SIMCUDA_REPORT",
                  also=["unknown variable"])],
             {"SIMCUDA_MEMORY": "64MiB"}, shim=False),
        # ---- settings that contradict each other ----
        Case("strict-with-passthrough",
             [Bad({"OVERSUB_MODE": "passthrough", "OVERSUB_STRICT": "1"}, form="expected OVERSUB_STRICT unset, or OVERSUB_MODE=swap", also=[passthrough])],
             {"OVERSUB_MODE": "swap", "OVERSUB_STRICT": "1"}),
        Case("swap-only-settings-with-passthrough",
             [Bad({"OVERSUB_MODE": "passthrough", "OVERSUB_DEVICE_BUDGET": "32MiB"},
                  form="expected OVERSUB_DEVICE_BUDGET unset, or OVERSUB_MODE=swap", also=[passthrough]),
              Bad({"OVERSUB_MODE": "passthrough", "OVERSUB_HOST_LIMIT": "64MiB"},
                  form="expected OVERSUB_HOST_LIMIT unset, or OVERSUB_MODE=swap", also=[passthrough]),
              Bad({"OVERSUB_MODE": "passthrough", "OVERSUB_POLICY": "lru"},
                  form="expected OVERSUB_POLICY unset, or OVERSUB_MODE=swap", also=[passthrough])],
             {"OVERSUB_MODE": "swap", "OVERSUB_DEVICE_BUDGET": "32MiB", "OVERSUB_HOST_LIMIT": "64MiB",
              "OVERSUB_POLICY": "lru"}),
        Case("trace-and-stats-same-file",
             [Bad({"OVERSUB_TRACE": same, "OVERSUB_STATS": same}, form="expected two different files"),
              Bad({"OVERSUB_TRACE": os.path.join(tmp, ".", "run.out"), "OVERSUB_STATS": same},
                  form="expected two different files")],
             {"OVERSUB_TRACE": os.path.join(tmp, "run.trace"), "OVERSUB_STATS": os.path.join(tmp, "run.json")},
             good_check=lambda env, run: trace_written(env, run) + stats_written(env, run)),
        Case("budget-larger-than-device",
             [Bad({"OVERSUB_DEVICE_BUDGET": "128MiB"}, context={"SIMCUDA_MEMORY": "64MiB"}, start=False,
                  form="expected a size no larger than the device",
                  also=["134217728 bytes", "the device has 64.0 MiB (67108864 bytes)"])],
             {"SIMCUDA_MEMORY": "64MiB", "OVERSUB_DEVICE_BUDGET": "64MiB"}),
        Case("budget-percent-below-minimum",
             [Bad({"OVERSUB_DEVICE_BUDGET": "5%"}, context={"SIMCUDA_MEMORY": "64MiB"}, start=False,
                  form="expected a percentage that leaves at least 4.0 MiB", also=["67108864 bytes"])],
             {"SIMCUDA_MEMORY": "64MiB", "OVERSUB_DEVICE_BUDGET": "10%"}),
        Case("simcuda-jitter-settings-without-jitter",
             [Bad({"SIMCUDA_SEED": "7"}, form="expected SIMCUDA_SEED unset, or SIMCUDA_JITTER=1", also=[jitter_off]),
              Bad({"SIMCUDA_JITTER_MAX_US": "50"}, context={"SIMCUDA_JITTER": "0"},
                  form="expected SIMCUDA_JITTER_MAX_US unset, or SIMCUDA_JITTER=1", also=[jitter_off])],
             {"SIMCUDA_JITTER": "1", "SIMCUDA_SEED": "7", "SIMCUDA_JITTER_MAX_US": "50"}, shim=False),
    ]


def documented_forms(source_root):
    """Variable -> accepted form, from the two documentation tables."""
    forms = {}
    for path, columns in (("docs/configuration.md", 5), ("tests/simcuda/README.md", 4)):
        with open(os.path.join(source_root, path), encoding="utf-8") as f:
            for line in f:
                m = re.match(r"^\| `((?:OVERSUB|SIMCUDA)_[A-Z_]+)` \|", line)
                if m:
                    cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
                    forms[m.group(1)] = cells[columns - 2]  # the "Accepted" column
    return forms


class Runner:
    def __init__(self, args):
        self.args = args
        base = {k: v for k, v in os.environ.items()
                if not k.startswith(("OVERSUB_", "SIMCUDA_")) and k not in ("LD_PRELOAD", "LD_LIBRARY_PATH")}
        self.base = base

    def run(self, settings, shim, spy):
        env = dict(self.base)
        env["LD_LIBRARY_PATH"] = (self.args.spy + ":" if spy else "") + self.args.simcuda
        if shim:
            env["LD_PRELOAD"] = self.args.shim
        env.update(settings)
        env = program_env(env)
        return env, subprocess.run([self.args.program], env=env, capture_output=True, text=True, timeout=120)


def describe(settings):
    return " ".join(f"{k}={v!r}" for k, v in settings.items())


def check_bad(runner, case, bad, forms):
    problems = []
    settings = dict(bad.context, **bad.env)
    where = describe(settings)
    _, run = runner.run(settings, case.shim, spy=False)
    lines = run.stderr.splitlines()
    if run.returncode != 2:
        problems.append(f"{where}: exit status {run.returncode}, expected 2")
    if len(lines) != 1:
        problems.append(f"{where}: {len(lines)} lines on stderr, expected exactly one:\n{run.stderr}")
    line = lines[0] if lines else ""
    form = bad.form
    if form is None:
        if case.name not in forms:
            problems.append(f"{where}: no documented accepted form for {case.name}")
        form = "expected " + forms.get(case.name, "?")
    for text in [f"{k}='{v}'" for k, v in bad.env.items()] + [form] + bad.also:
        if text not in line:
            problems.append(f"{where}: the line lacks {text!r}: {line!r}")
    # stream_sample prints only when a call fails or at the end.
    if CHECKSUM in run.stdout or (bad.start and run.stdout):
        problems.append(f"{where}: the program did work before stopping: stdout {run.stdout!r}")
    if bad.start and case.shim:
        # The same run with the spy as the driver: the same line, and no call reached it.
        _, spied = runner.run(settings, case.shim, spy=True)
        if spied.returncode != 2 or spied.stderr != run.stderr:
            problems.append(f"{where}: with the driver spy: status {spied.returncode}, stderr {spied.stderr!r}")
        calls = [l for l in spied.stderr.splitlines() if l.startswith("driver_spy:")]
        if calls:
            problems.append(f"{where}: the driver was called before the process stopped: {calls[:3]}")
    return problems


def check_good(runner, case):
    problems = []
    where = describe(case.good)
    env, run = runner.run(case.good, case.shim, spy=False)
    if run.returncode != 0 or CHECKSUM not in run.stdout:
        problems.append(f"{where}: a good value failed (status {run.returncode}):\n{run.stdout}{run.stderr}")
        return problems
    if case.good_check:
        problems += [f"{where}: {p}" for p in case.good_check(env, run)]
    if case.shim:
        # The probe works: with good settings the spy sees the program's calls.
        _, spied = runner.run(case.good, case.shim, spy=True)
        if not any(l.startswith("driver_spy:") for l in spied.stderr.splitlines()):
            problems.append(f"{where}: the driver spy saw no call from a good run; it proves nothing:\n{spied.stderr}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("case", nargs="?")
    parser.add_argument("--list", action="store_true", help="print the case names, one a line")
    parser.add_argument("--shim")
    parser.add_argument("--program")
    parser.add_argument("--simcuda")
    parser.add_argument("--spy")
    parser.add_argument("--source-root")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = os.path.realpath(tmp)
        all_cases = cases(tmp)
        if args.list:
            print("\n".join(c.name for c in all_cases))
            return 0
        forms = documented_forms(args.source_root)
        if args.case == "every-variable-has-a-case":
            # The documentation tables and the cases name the same variables.
            missing = sorted(set(forms) - {c.name for c in all_cases})
            for name in missing:
                print(f"check_config_errors: {name} is documented but has no case", file=sys.stderr)
            return 1 if missing else 0
        (case,) = [c for c in all_cases if c.name == args.case] or [None]
        if case is None:
            parser.error(f"unknown case {args.case!r}")
        runner = Runner(args)
        problems = []
        for bad in case.bads:
            problems += check_bad(runner, case, bad, forms)
        problems += check_good(runner, case)
    for p in problems:
        print(f"check_config_errors: {case.name}: {p}", file=sys.stderr)
    print(f"{case.name}: {'FAIL' if problems else f'{len(case.bads)} bad environments stopped, the good one ran'}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
