"""`oversub demo`: train a convolutional network under 4x oversubscription,
then the same training on a device large enough, and compare.

On a machine without a GPU both runs use the simulated GPU (build/tests/simcuda):
the oversubscribed one gets a simulated device a quarter of the program's
footprint. On a real GPU the oversubscribed run gets a device budget of a
quarter of the footprint instead (OVERSUB_DEVICE_BUDGET).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

MiB = 1 << 20
STEPS = 6


def _root(here):
    root = os.path.dirname(here)
    if not os.path.exists(os.path.join(root, "tests", "workloads", "cnn_train.cu")):
        return None
    return root


def _has_gpu():
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    probe = subprocess.run([smi, "-L"], capture_output=True, text=True)
    return probe.returncode == 0 and "GPU" in probe.stdout


def _run_streaming(cmd, env, label):
    """Runs the workload, echoing its step lines as progress."""
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if line.startswith("step "):
            print(f"  {label}: {line.strip()}", flush=True)
    stderr = proc.stderr.read()
    proc.wait()
    return proc.returncode, "".join(lines), stderr, time.monotonic() - start


def _mib(n):
    return f"{n / MiB:.1f} MiB"


def _plot(root, trace_path, png_path):
    """Draws the trace's memory timeline; returns the PNG's path, or why there is none."""
    cli = os.path.join(root, "build", "tracer", "oversub-trace")
    if not os.path.exists(cli):
        return f"not drawn ({cli} is missing)"
    try:
        plot = subprocess.run([cli, "plot", trace_path, "-o", png_path], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"not drawn ({e})"
    if plot.returncode != 0:
        why = (plot.stderr or plot.stdout).strip() or f"exit status {plot.returncode}"
        return f"not drawn ({why})"
    return png_path


def run_demo(here, argv):
    if argv:
        print("usage: oversub demo", file=sys.stderr)
        return 2
    root = _root(here)
    if root is None:
        print("oversub demo: needs a source checkout (it trains tests/workloads/cnn_train)", file=sys.stderr)
        return 1
    gpu = _has_gpu()
    targets = ["shim/liboversub.so", "tests/workloads/cnn_train", "tracer/oversub-trace"]
    if not gpu:
        targets += ["tests/simcuda/libcuda.so.1", "tests/simcuda/libcudart.so.13", "tests/simcuda/libcublas.so.13",
                    "tests/simcuda/libcudnn.so.9"]
    print("oversub demo: building what is missing", flush=True)
    build = subprocess.run([os.path.join(root, "scripts", "ensure-build")] + targets, cwd=root)
    if build.returncode != 0:
        return build.returncode
    workload = os.path.join(root, "build", "tests", "workloads", "cnn_train")
    shim = os.path.join(root, "build", "shim", "liboversub.so")
    base_env = dict(os.environ)
    if not gpu:
        sim = os.path.join(root, "build", "tests", "simcuda")
        base_env["LD_LIBRARY_PATH"] = sim + (":" + base_env["LD_LIBRARY_PATH"] if base_env.get("LD_LIBRARY_PATH") else "")
    where = "a real GPU" if gpu else "the simulated GPU (no GPU on this machine)"
    print(f"oversub demo: training cnn_train for {STEPS} steps on {where}", flush=True)

    # 1. The reference: a device large enough, no oversub.
    ref_env = dict(base_env)
    if not gpu:
        ref_env["SIMCUDA_MEMORY"] = "2GiB"
    cmd = [workload, "--steps", str(STEPS)]
    code, ref_out, ref_err, ref_time = _run_streaming(cmd, ref_env, "without oversub")
    if code != 0:
        print(ref_err, file=sys.stderr)
        return 1
    footprint = int(re.search(r"peak_device_bytes (\d+)", ref_out).group(1))
    quarter = -(-footprint // 4 // (2 * MiB)) * 2 * MiB

    # 2. Oversubscribed 4x.
    out_dir = os.path.join(root, "build", "demo")
    os.makedirs(out_dir, exist_ok=True)
    trace_path = os.path.join(out_dir, "cnn_train.trace")
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = os.path.join(tmp, "stats.json")
        env = dict(base_env, LD_PRELOAD=shim, OVERSUB_STATS=stats_path, OVERSUB_TRACE=trace_path, OVERSUB_LOG="quiet")
        if gpu:
            env["OVERSUB_DEVICE_BUDGET"] = str(quarter)
        else:
            env["SIMCUDA_MEMORY"] = str(quarter)
            env["SIMCUDA_REPORT"] = "1"
        code, out, err, swap_time = _run_streaming(cmd, env, "with oversub   ")
        if code != 0:
            print(err, file=sys.stderr)
            print("oversub demo: the oversubscribed run failed", file=sys.stderr)
            return 1
        with open(stats_path, encoding="utf-8") as f:
            stats = json.load(f)
    device_peak = stats["peak_device_bytes"]
    m = re.search(r"simcuda: peak device bytes (\d+) capacity (\d+)", err)
    if m:
        device_peak = int(m.group(1))
    identical = out == ref_out
    ratio = footprint / quarter
    print()
    print("                          without oversub     with oversub")
    print(f"  device memory           {'≥ ' + _mib(footprint):<19} {_mib(quarter)} ({ratio:.1f}x oversubscribed)")
    print(f"  program footprint       {_mib(footprint):<19} {_mib(footprint)}")
    print(f"  oversub device budget   {'-':<19} {_mib(stats['budget_bytes'])}")
    print(f"  peak device memory      {_mib(footprint):<19} {_mib(device_peak)}")
    print(f"  moved device->host      {'-':<19} {_mib(stats['bytes_evicted'])} in {stats['evictions']} chunks")
    print(f"  moved host->device      {'-':<19} {_mib(stats['bytes_prefetched'])} in {stats['prefetches']} chunks")
    print(f"  host waited             {'-':<19} {stats['host_wait_ns'] / 1e9:.2f} s")
    print(f"  wall time               {ref_time:<19.1f} {swap_time:.1f} s")
    print(f"  results bit-identical   {'yes' if identical else 'NO'}")
    print()
    print(f"  trace: {trace_path}  (oversub-trace summary {trace_path})")
    print(f"  memory timeline plot: {_plot(root, trace_path, os.path.join(out_dir, 'memory-timeline.png'))}")
    if not gpu:
        print("  note: times on the simulated GPU measure the CPU simulation, not a GPU")
    return 0 if identical else 1
