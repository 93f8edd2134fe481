#!/usr/bin/env python3
"""Compares residency policies on one workload at a fraction of its footprint.

    compare_policies.py SHIM WORKLOAD FRACTION STEPS [--policies lru,lookahead]

For each policy it runs the workload twice under the shim (strict, jitter):
with --steps 2 and with --steps STEPS. The difference between the two runs'
statistics is what steps 3..STEPS cost, so the figures per step exclude the
first two steps (no policy can predict before it has seen the step repeat).
It prints, per policy and per step: bytes evicted and prefetched, host wait,
and the ratio of the bytes moved each way to the minimum, (peak allocated
bytes - budget) per step. It checks that every run's output is identical to
a run on a device big enough, and fails otherwise; the figures themselves are
reported, not asserted (this is a benchmark, suite 'bench').
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

MiB = 1 << 20


def run(cmd, env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("shim")
    parser.add_argument("workload")
    parser.add_argument("fraction", type=float)
    parser.add_argument("steps", type=int)
    parser.add_argument("--policies", default="lru,lookahead")
    args = parser.parse_args()
    if args.steps < 3:
        print("compare_policies: STEPS must be at least 3", file=sys.stderr)
        return 2
    name = os.path.basename(args.workload)
    plain = {}
    for steps in (2, args.steps):
        p = run([args.workload, "--steps", str(steps)], {"SIMCUDA_MEMORY": "2GiB"})
        if p.returncode != 0:
            print(f"compare_policies: plain run failed: {p.stderr}", file=sys.stderr)
            return 1
        plain[steps] = p.stdout
    footprint = int(re.search(r"peak_device_bytes (\d+)", plain[2]).group(1))
    capacity = -(-int(footprint * args.fraction) // (2 * MiB)) * 2 * MiB
    print(f"{name}: footprint {footprint / MiB:.1f} MiB, device {capacity / MiB:.0f} MiB "
          f"({footprint / capacity:.2f}x), steps 3..{args.steps}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for policy in args.policies.split(","):
            stats = {}
            for steps in (2, args.steps):
                path = os.path.join(tmp, f"{policy}-{steps}.json")
                p = run([args.workload, "--steps", str(steps)], {
                    "LD_PRELOAD": args.shim, "SIMCUDA_MEMORY": str(capacity), "SIMCUDA_JITTER": "1",
                    "OVERSUB_STRICT": "1", "OVERSUB_POLICY": policy, "OVERSUB_STATS": path})
                if p.returncode != 0 or p.stdout != plain[steps]:
                    print(f"compare_policies: {policy}, {steps} steps: status {p.returncode}, "
                          f"output {'identical' if p.stdout == plain[steps] else 'DIFFERS'}\n{p.stderr}",
                          file=sys.stderr)
                    return 1
                with open(path, encoding="utf-8") as f:
                    stats[steps] = json.load(f)
            n = args.steps - 2
            a, b = stats[2], stats[args.steps]
            per = {k: (b[k] - a[k]) / n for k in ("bytes_evicted", "bytes_prefetched", "host_wait_ns")}
            minimum = max(b["peak_allocated_bytes"] - b["budget_bytes"], 1)
            rows[policy] = per
            print(f"  {policy:10s} per step: evicted {per['bytes_evicted'] / MiB:7.1f} MiB "
                  f"({per['bytes_evicted'] / minimum:.2f}x min), prefetched {per['bytes_prefetched'] / MiB:7.1f} MiB "
                  f"({per['bytes_prefetched'] / minimum:.2f}x min), host wait {per['host_wait_ns'] / 1e6:8.1f} ms  "
                  f"[min each way {minimum / MiB:.1f} MiB = peak allocated {b['peak_allocated_bytes'] / MiB:.1f} "
                  f"- budget {b['budget_bytes'] / MiB:.1f}]")
    if "lru" in rows and "lookahead" in rows:
        lru, la = rows["lru"], rows["lookahead"]
        moved = (la["bytes_evicted"] + la["bytes_prefetched"]) / max(lru["bytes_evicted"] + lru["bytes_prefetched"], 1)
        wait = lru["host_wait_ns"] / max(la["host_wait_ns"], 1)
        print(f"  lookahead vs lru: bytes moved x{moved:.2f}, host wait reduced x{wait:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
