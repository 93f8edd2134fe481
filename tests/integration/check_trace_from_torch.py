#!/usr/bin/env python3
"""Issue 7: scripts/trace_from_torch.py itself.

  check_trace_from_torch.py missing-torch SOURCE_ROOT
  check_trace_from_torch.py capture SOURCE_ROOT OVERSUB_TRACE_CLI

missing-torch (needs no PyTorch): with an interpreter whose `import torch` fails, the script
exits 3 and says how to install PyTorch from Debian and from PyPI.

capture: runs the script for real, with the first interpreter that can import torch and
torchvision among $OVERSUB_TORCH_PYTHON, this one and /usr/bin/python3 (exit 77, skipped,
when none can: CI has no PyTorch). A two-layer perceptron, whose figures follow from its
shapes:
  - the metadata says what was asked (model, batch, width, steps, parameter count);
  - each step's matrix-product FLOPs are exactly 2*B*(2*in*hidden + 3*hidden*classes):
    forward both layers, backward both weight gradients and the second layer's input
    gradient; the ReLU counts B*hidden (one per output element);
  - the bytes live at the end are exactly weights, gradients and momentum (3 x 4 bytes per
    parameter); one device sync per step; every free matches an allocation;
  - ranges lie inside live allocations, which never overlap;
  - the same command writes the same trace (its output path aside).
Then a small 3D U-Net, whose forward FLOPs must match the nnU-Net-layout count of
check_torch_traces.py within 2% (convolutions and their backward go through the meta
kernels the script registers), and bad arguments, which exit 2.
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile

import check_torch_traces

SKIP = 77
EXIT_NO_TORCH = 3


def fail(message):
    print("FAIL", message)
    sys.exit(1)


def script(root):
    return os.path.join(root, "scripts", "trace_from_torch.py")


def check_missing_torch(root):
    with tempfile.TemporaryDirectory() as fake:
        os.makedirs(os.path.join(fake, "torch"))
        with open(os.path.join(fake, "torch", "__init__.py"), "w", encoding="utf-8") as f:
            f.write("raise ImportError('simulated: no PyTorch here')\n")
        env = dict(os.environ, PYTHONPATH=fake)
        run = subprocess.run([sys.executable, script(root), "--model", "mlp", "-o", os.path.join(fake, "t.trace")],
                             capture_output=True, text=True, env=env)
    if run.returncode != EXIT_NO_TORCH:
        fail(f"exit status {run.returncode}, expected {EXIT_NO_TORCH}; stderr:\n{run.stderr}")
    for needed in ("simulated: no PyTorch here", "apt-get install python3-torch python3-torchvision",
                   "pip install torch torchvision"):
        if needed not in run.stderr:
            fail(f"the message lacks {needed!r}:\n{run.stderr}")
    print(run.stderr)
    return 0


def torch_python():
    candidates = [os.environ.get("OVERSUB_TORCH_PYTHON"), sys.executable, "/usr/bin/python3"]
    for python in filter(None, candidates):
        if os.access(python, os.X_OK) and subprocess.run([python, "-c", "import torch, torchvision"],
                                                         capture_output=True).returncode == 0:
            return python
    return None


def capture(python, root, arguments, output):
    run = subprocess.run([python, script(root), *arguments, "-o", output], capture_output=True, text=True, cwd=root)
    if run.returncode != 0:
        fail(f"{' '.join(arguments)}: exit status {run.returncode}:\n{run.stderr}")
    print(run.stderr.strip())


def summary(cli, path):
    run = subprocess.run([cli, "summary", "--json", path], capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"oversub-trace summary {path}: {run.stderr}")
    return json.loads(run.stdout)


def flops_by_step(path):
    """Per step: (matrix-product FLOPs, FLOPs of each relu op)."""
    names, kinds, steps = {}, {}, [[0, []]]
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            fields = line.rstrip("\n").split(" ")
            if fields[0] == "n":
                names[fields[1]] = " ".join(fields[2:])
            elif fields[0] == "o":
                kinds[fields[1]] = (fields[4], names.get(fields[5], ""))
            elif fields[0] == "c":
                kind, name = kinds[fields[1]]
                if kind == "cublas":
                    steps[-1][0] += int(fields[2], 16)
                elif name == "aten::relu":
                    steps[-1][1].append(int(fields[2], 16))
            elif fields[0] == "s":
                steps.append([0, []])
    return steps[:-1]


def check_mlp(python, root, cli, folder):
    batch, width, steps = 16, 64, 3
    hidden, classes = 2 * width, 10  # the script's mlp: Linear(w, 2w), ReLU, Linear(2w, 10)
    parameters = width * hidden + hidden + hidden * classes + classes
    arguments = ["--model", "mlp", "--batch", str(batch), "--size", str(width), "--steps", str(steps)]
    path = os.path.join(folder, "mlp.trace.gz")
    capture(python, root, arguments, path)
    s = summary(cli, path)
    meta = s["metadata"]
    expected = {"model": "mlp", "batch": str(batch), "input_width": str(width), "steps": str(steps),
                "parameters": str(parameters)}
    for key, value in expected.items():
        if meta.get(key) != value:
            fail(f"metadata {key} = {meta.get(key)!r}, expected {value!r}")
    if not meta["command"].endswith(" ".join(arguments) + " -o " + path):
        fail(f"command metadata {meta['command']!r} does not end with the arguments given")
    if s["live_at_end"]["bytes"] != 3 * 4 * parameters:
        fail(f"{s['live_at_end']['bytes']} bytes live at the end, expected {3 * 4 * parameters}")
    if s["syncs_by_kind"]["device"] != steps or s["unmatched_frees"] != 0 or not s["complete"]:
        fail(f"device syncs {s['syncs_by_kind']['device']}, unmatched frees {s['unmatched_frees']}")
    matmul = 2 * batch * (2 * width * hidden + 3 * hidden * classes)
    for step, (product_flops, relu_flops) in enumerate(flops_by_step(path), start=1):
        if product_flops != matmul or relu_flops != [batch * hidden]:
            fail(f"step {step}: matrix-product FLOPs {product_flops} (expected {matmul}), relu {relu_flops} "
                 f"(expected [{batch * hidden}])")
    check = check_torch_traces.Checker()
    check_torch_traces.check_structure(path, check)
    if check.failures:
        fail("\n".join(check.failures))
    again = os.path.join(folder, "again.trace.gz")
    capture(python, root, arguments, again)
    with gzip.open(path, "rt") as a, gzip.open(again, "rt") as b:
        if a.read().replace(path, "OUT") != b.read().replace(again, "OUT"):
            fail("the same command wrote a different trace")


def check_unet(python, root, cli, folder):
    side, batch = 64, 1
    path = os.path.join(folder, "unet.trace.gz")
    capture(python, root, ["--model", "unet3d", "--batch", str(batch), "--size", str(side), "--steps", "2"], path)
    meta = summary(cli, path)["metadata"]
    ratio = int(meta["forward_flops_per_step"]) / (batch * check_torch_traces.unet_forward_flops(side))
    if not 0.98 <= ratio <= 1.02:
        fail(f"3D U-Net forward FLOPs are {ratio:.4f} x the layout's count")


def check_capture(root, cli):
    python = torch_python()
    if python is None:
        print("skipped: no interpreter here imports torch and torchvision (set OVERSUB_TORCH_PYTHON)")
        return SKIP
    with tempfile.TemporaryDirectory() as folder:
        check_mlp(python, root, cli, folder)
        check_unet(python, root, cli, folder)
        for arguments, needed in ((["--model", "mlp", "--steps", "0"], "--steps"),
                                  (["--model", "unet3d", "--size", "48"], "multiple of 32")):
            bad = subprocess.run([python, script(root), *arguments, "-o", os.path.join(folder, "x")],
                                 capture_output=True, text=True)
            if bad.returncode != 2 or needed not in bad.stderr:
                fail(f"{' '.join(arguments)}: exit {bad.returncode}, stderr {bad.stderr!r}")
    return 0


def main():
    mode, root = sys.argv[1], sys.argv[2]
    if mode == "missing-torch":
        return check_missing_torch(root)
    return check_capture(root, sys.argv[3])


if __name__ == "__main__":
    sys.exit(main())
