#!/usr/bin/env python3
"""Swap-mode acceptance checks (issue: transparent oversubscription).

  check_swap.py oversubscribed SHIM WORKLOAD FRACTION STRICT ARGS...
      Runs WORKLOAD without the shim on a large device, then under the shim on
      a device of FRACTION of its footprint (rounded up to 2 MiB), with
      SIMCUDA_JITTER=1 and OVERSUB_STRICT=STRICT. Output must be identical
      and the simulated device's peak within its capacity.
  check_swap.py fits SHIM WORKLOAD ARGS...
      The footprint fits the budget: nothing may be evicted.
"""
import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])

MiB = 1 << 20


def run(cmd, env_extra):
    env = dict(os.environ)
    env.update(env_extra)
    env = program_env(env)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)


def fail(message):
    print(f"check_swap: {message}", file=sys.stderr)
    return 1


def oversubscribed(shim, workload, fraction, strict, args):
    plain = run([workload] + args, {"SIMCUDA_MEMORY": "2GiB"})
    if plain.returncode != 0:
        return fail(f"plain run failed: {plain.stderr}")
    footprint = int(re.search(r"peak_device_bytes (\d+)", plain.stdout).group(1))
    capacity = -(-int(footprint * fraction) // (2 * MiB)) * 2 * MiB
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        trace_path = os.path.join(tmp, "run.trace")
        swapped = run([workload] + args, {
            "LD_PRELOAD": shim, "SIMCUDA_MEMORY": str(capacity), "SIMCUDA_REPORT": "1", "SIMCUDA_JITTER": "1",
            "OVERSUB_STRICT": strict, "OVERSUB_STATS": stats_path, "OVERSUB_TRACE": trace_path})
        print(f"footprint {footprint} bytes, device {capacity} bytes ({footprint / capacity:.2f}x)")
        print(swapped.stderr, end="")
        if swapped.returncode != 0:
            return fail(f"run under the shim failed with status {swapped.returncode}")
        if swapped.stdout != plain.stdout:
            return fail(f"output differs:\n--- plain\n{plain.stdout}--- under the shim\n{swapped.stdout}")
        peak = int(re.search(r"simcuda: peak device bytes (\d+) capacity (\d+)", swapped.stderr).group(1))
        if peak > capacity:
            return fail(f"device peak {peak} exceeds capacity {capacity}")
        with open(stats_path, encoding="utf-8") as f:
            stats = json.load(f)
        for key in ("budget_bytes", "peak_device_bytes", "peak_host_bytes", "bytes_evicted", "bytes_prefetched",
                    "evictions", "prefetches", "uploads_yielded_to", "host_wait_ns", "ops"):
            if key not in stats:
                return fail(f"stats lack {key}")
        if stats["bytes_evicted"] == 0 or stats["peak_device_bytes"] > stats["budget_bytes"]:
            return fail(f"implausible stats for an oversubscribed run: {stats}")
        # Every eviction and prefetch is an event in the trace.
        with open(trace_path, encoding="utf-8") as f:
            tags = [line[:2] for line in f]
        if tags.count("e ") != stats["evictions"] or tags.count("p ") != stats["prefetches"]:
            return fail(f"trace has {tags.count('e ')} evict and {tags.count('p ')} prefetch events, "
                        f"stats say {stats['evictions']} and {stats['prefetches']}")
    print("identical output, peak within capacity: ok")
    return 0


def fits(shim, workload, args):
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        plain = run([workload] + args, {})
        swapped = run([workload] + args, {"LD_PRELOAD": shim, "OVERSUB_STATS": stats_path})
        if swapped.returncode != 0 or swapped.stdout != plain.stdout:
            return fail(f"run under the shim failed or differs:\n{swapped.stdout}{swapped.stderr}")
        with open(stats_path, encoding="utf-8") as f:
            stats = json.load(f)
    print(json.dumps(stats))
    if stats["bytes_evicted"] != 0 or stats["evictions"] != 0:
        return fail("chunks were evicted although the footprint fits the budget")
    if stats["ops"] == 0:
        return fail("no ops were counted: the shim did not run in swap mode")
    print("nothing evicted: ok")
    return 0


def main():
    mode = sys.argv[1]
    if mode == "oversubscribed":
        return oversubscribed(sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5], sys.argv[6:])
    if mode == "fits":
        return fits(sys.argv[2], sys.argv[3], sys.argv[4:])
    return fail(f"unknown mode {mode}")


if __name__ == "__main__":
    sys.exit(main())
