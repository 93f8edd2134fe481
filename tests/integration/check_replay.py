#!/usr/bin/env python3
"""Issue 7: `oversub-trace compare --json` on committed PyTorch traces keeps the bounds any
honest replay must keep, on real models rather than the hand-worked ones of
tests/unit/replay_test.cpp.

  check_replay.py OVERSUB_TRACE SOURCE_ROOT

For every row (trace x device x budget x policy):
  - a row that runs takes at least the unlimited step time of its trace and device, and at
    least the lower bound (Note [Lower bound] in tracer/replay/replay.h);
  - a row that does not run has no step time, and only policies other than unlimited can
    fail to run (unlimited ignores the budget);
  - the peak device bytes of a policy under a budget stay within it;
  - at 100% of the footprint every policy runs, and unlimited, vdnn and tflms move nothing;
  - below the footprint every policy that runs moves bytes both ways.
Prints a compact table of lookahead against the best baseline, for the log.
"""
import json
import os
import subprocess
import sys

TRACES = ["unet3d-b2-64.trace.gz", "vgg16-b256-224.trace.gz"]
DEVICES = "h100-sxm,v100-32gb-nvlink"
BUDGETS = "100%,50%,25%"
STATIC = {"unlimited", "vdnn", "tflms"}  # nothing moves when the footprint fits


def main() -> int:
    cli, root = sys.argv[1], sys.argv[2]
    paths = [os.path.join(root, "tests/data/traces/torch", t) for t in TRACES]
    out = subprocess.run([cli, "compare", *paths, "--devices", DEVICES, "--budgets", BUDGETS, "--json"],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        print(f"compare exited {out.returncode}: {out.stderr}", file=sys.stderr)
        return 1
    rows = json.loads(out.stdout)
    expected = len(TRACES) * 2 * 3 * 6
    problems = []
    if len(rows) != expected:
        problems.append(f"{len(rows)} rows, expected {expected}")
    unlimited = {(r["trace"], r["device"]): r["step_time_s"] for r in rows if r["policy"] == "unlimited"}
    for r in rows:
        where = f'{r["trace"]} {r["device"]} {r["budget_fraction"]:.2f} {r["policy"]}'
        step = r["step_time_s"]
        if step is None:
            if r["policy"] == "unlimited" or r["fits"]:
                problems.append(f"{where}: no step time, fits={r['fits']}")
            continue
        if r["policy"] == "unlimited":
            continue
        if not r["fits"]:
            problems.append(f"{where}: a step time but fits is false")
        if step < unlimited[(r["trace"], r["device"])]:
            problems.append(f"{where}: {step} s beats unlimited memory")
        if step < r["lower_bound_s"]:
            problems.append(f"{where}: {step} s beats the lower bound {r['lower_bound_s']} s")
        if r["peak_device_bytes"] > r["budget_bytes"]:
            problems.append(f"{where}: peak {r['peak_device_bytes']} over the budget")
        full = abs(r["budget_fraction"] - 1.0) < 1e-9
        moved = r["bytes_h2d"] + r["bytes_d2h"]
        if full and r["policy"] in STATIC and moved != 0:
            problems.append(f"{where}: moved {moved} bytes at a budget that fits")
        if not full and (r["bytes_h2d"] == 0 or r["bytes_d2h"] == 0):
            problems.append(f"{where}: moved nothing one way below the footprint")
    for r in rows:
        if abs(r["budget_fraction"] - 1.0) < 1e-9 and not r["fits"]:
            problems.append(f'{r["trace"]} {r["device"]} {r["policy"]}: does not fit at 100%')

    best = {}
    for r in rows:
        if r["step_time_s"] is None or r["policy"] == "unlimited":
            continue
        key = (r["trace"], r["device"], round(r["budget_fraction"], 2))
        best.setdefault(key, {})[r["policy"]] = r["step_time_s"]
    for key, steps in sorted(best.items()):
        baselines = {p: s for p, s in steps.items() if not p.startswith("lookahead")}
        if "lookahead" in steps and baselines:
            name, fastest = min(baselines.items(), key=lambda kv: kv[1])
            print(f"{key[0]:28} {key[1]:17} {key[2]:4}  lookahead {steps['lookahead']:.4f} s, "
                  f"best baseline {name} {fastest:.4f} s")
    for p in problems:
        print("check_replay:", p, file=sys.stderr)
    print(f"{len(rows)} rows, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
