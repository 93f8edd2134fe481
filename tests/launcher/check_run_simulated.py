#!/usr/bin/env python3
"""`oversub run --budget 25% -- gpt_train --steps 3` on the simulated GPU.

  check_run_simulated.py LAUNCHER GPT_TRAIN SIMCUDA_DIR
"""
import os
import subprocess
import sys


def main():
    launcher, workload, sim = sys.argv[1:4]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OVERSUB_", "SIMCUDA_"))}
    env.pop("LD_LIBRARY_PATH", None)
    env.pop("LD_PRELOAD", None)
    run = subprocess.run([launcher, "run", "--budget", "25%", "--", workload, "--steps", "3"],
                         env=env, capture_output=True, text=True, timeout=300)
    reference = subprocess.run([workload, "--steps", "3"], env=dict(env, LD_LIBRARY_PATH=sim,
                               SIMCUDA_MEMORY="2GiB"), capture_output=True, text=True, timeout=300)
    print(run.stderr, end="")
    problems = []
    if run.returncode != 0:
        problems.append(f"oversub run exited with {run.returncode}")
    if "running on the simulated GPU" not in run.stderr:
        problems.append("the launcher did not say it used the simulated GPU")
    if "of 256 MiB budget" not in run.stderr:
        problems.append("the budget is not 25% of the simulated 1 GiB")
    if run.stdout != reference.stdout:
        problems.append(f"output differs from the reference run:\n{run.stdout}---\n{reference.stdout}")
    for p in problems:
        print(f"check_run_simulated: {p}", file=sys.stderr)
    print("oversub run on the simulated GPU: " + ("FAIL" if problems else "ok"))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
