#!/usr/bin/env python3
"""Issue 7, a differential check (CONVENTIONS.md 11, third layer): the replay's residency
engine makes the live engine's decisions. A workload runs under the shim in swap mode with
POLICY at BUDGET bytes and writes a trace; the trace's own `e` and `p` lines say how many
chunks the live engine evicted and brought back. `oversub-trace replay` of that very trace
with the same policy and budget (no repeated steps: the run is the step) must count the same
within TOLERANCE: the timing differs (the simulated GPU against the cost model), the
decisions should not.

  check_replay_matches_shim.py SHIM OVERSUB_TRACE POLICY BUDGET_BYTES TOLERANCE -- WORKLOAD ARGS...
"""
import json
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])


def main() -> int:
    shim, cli, policy, budget, tolerance = sys.argv[1:6]
    program = sys.argv[sys.argv.index("--") + 1:]
    with tempfile.TemporaryDirectory() as tmp:
        trace = os.path.join(tmp, "run.trace")
        env = dict(os.environ)
        env.update({"LD_PRELOAD": shim, "OVERSUB_MODE": "swap", "OVERSUB_POLICY": policy,
                    "OVERSUB_DEVICE_BUDGET": budget, "OVERSUB_TRACE": trace})
        run = subprocess.run(program, env=program_env(env), capture_output=True, text=True, timeout=600)
        if run.returncode != 0:
            print(f"check_replay_matches_shim: the workload failed: {run.stderr}", file=sys.stderr)
            return 1
        summary = json.loads(subprocess.run([cli, "summary", "--json", trace], capture_output=True, text=True,
                                            check=True).stdout)
        rows = json.loads(subprocess.run([cli, "replay", trace, "--budget", budget, "--policy", policy,
                                          "--steps", "0", "--json"], capture_output=True, text=True,
                                         check=True).stdout)
    replay = rows[0]
    chunk = 2 << 20
    live = {"evicted": summary["evictions"]["count"], "brought back": summary["prefetches"]["count"]}
    replayed = {"evicted": replay["bytes_d2h"] // chunk, "brought back": replay["bytes_h2d"] // chunk}
    problems = 0
    for what, count in live.items():
        print(f"{what}: shim {count} chunks, replay {replayed[what]}")
        if count < 10:
            print(f"check_replay_matches_shim: the shim {what} only {count} chunks: the budget is too loose "
                  "for a comparison", file=sys.stderr)
            problems += 1
        elif abs(replayed[what] - count) > float(tolerance) * count:
            print(f"check_replay_matches_shim: {what}: replay {replayed[what]} against the shim's {count}, "
                  f"more than {float(tolerance):.0%} apart", file=sys.stderr)
            problems += 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
