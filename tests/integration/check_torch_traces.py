#!/usr/bin/env python3
"""Issue 7: the committed PyTorch traces (tests/data/traces/torch) hold what their models do.

  check_torch_traces.py OVERSUB_TRACE_CLI SOURCE_ROOT

Needs no PyTorch. Every trace is read by `oversub-trace summary --json`, and its figures
are checked against figures from outside the capture (REFERENCE below: published parameter
and FLOP counts, and activation estimates worked out from each model's shapes):
  - parameters as published; live bytes at the end = parameters x 4 bytes x the tensors
    kept per parameter (weight, gradient, optimizer state), within 1% (buffers);
  - FLOPs per step within 10% of 3x the reference forward FLOPs, and the trace's own
    forward figure within 10% of the reference;
  - peak live bytes inside the stated plausible range;
  - at least 3 steps (a first one, then repeats), one device sync per step, no unmatched
    free, a complete trace;
  - a model traced at several sizes: FLOPs and peak activation bytes scale with the pixel
    or voxel count;
  - the trace's structure: every op range lies inside a live allocation, live allocations
    never overlap, every address is 512-byte aligned;
  - its `command` metadata is one of the lines of make-traces.sh in that folder.
"""
import bisect
import gzip
import json
import os
import subprocess
import sys

GB = 1e9
FP32_BYTES = 4


def deeplab_forward_flops(image_side):
    # torchvision's DeepLabV3_ResNet50_Weights: 178.722 GFLOPS (multiply-adds) at 520x520,
    # counting the auxiliary FCN head, which we leave out: its 3x3 1024->256 and 1x1 256->21
    # convolutions on the 65x65 stride-8 map are 65^2 * (1024*256*9 + 256*21) multiply-adds.
    # Everything runs on maps 1/8 of the input side (output stride 8), so it scales with
    # (side/8)^2.
    aux = 65 ** 2 * (1024 * 256 * 9 + 256 * 21)
    return 2 * (178.722e9 - aux) * (image_side / 8) ** 2 / 65 ** 2


def unet_forward_flops(side, features=(32, 64, 128, 256, 320, 320), in_channels=4, classes=4):
    # nnU-Net's layout: stage s works at side / 2^s with two 3x3x3 convolutions (the first
    # one strides 2 from stage 1 on); each decoder stage upsamples with a 2x2x2 transposed
    # convolution, then convolves the concatenated skip (2C -> C) and again (C -> C); a
    # 1x1x1 head. Multiply-adds, doubled.
    macs = 0
    cin = in_channels
    for s, c in enumerate(features):
        voxels = (side // 2 ** s) ** 3
        macs += voxels * 27 * (cin * c + c * c)
        cin = c
    for s in range(len(features) - 2, -1, -1):
        voxels = (side // 2 ** s) ** 3
        c = features[s]
        macs += (side // 2 ** (s + 1)) ** 3 * features[s + 1] * c * 8
        macs += voxels * 27 * (2 * c * c + c * c)
    macs += side ** 3 * features[0] * classes
    return 2 * macs


def transformer_forward_flops_per_token(layers, width, length, vocabulary, extra_square=0):
    # Per token: 2 FLOPs per weight of the 12 width^2 weights of each layer (attention 4,
    # feed-forward 8), the output projection onto the vocabulary, plus the attention
    # products QK^T and AV, 2 * 2 * length * width per layer.
    weights = layers * 12 * width ** 2 + width * vocabulary + extra_square * width ** 2
    return 2 * weights + 4 * layers * length * width


def transformer_activation_bytes(layers, width, heads, length, batch):
    # Korthikanti et al., "Reducing Activation Recomputation in Large Transformer Models"
    # (2022), section 4.1: 34 s*b*h + 5 a*s^2*b bytes per layer with 2-byte activations
    # and 1-byte dropout masks. In fp32 the 2-byte terms double and the masks stay:
    # 66 s*b*h + 9 a*s^2*b.
    sbh = length * batch * width
    return layers * (66 * sbh + 9 * heads * length ** 2 * batch)


def transformer_peak(layers, width, heads, vocabulary, length, batch, persistent):
    # Plus the logits and their log-softmax, both kept for the backward pass.
    return persistent + transformer_activation_bytes(layers, width, heads, length, batch) + \
        2 * FP32_BYTES * batch * length * vocabulary


# Per model: published parameters (None where nobody publishes this exact variant), the
# reference forward FLOPs of one sample, and a plausible peak-bytes range, as functions
# of the trace's size and batch and its persistent bytes.
REFERENCE = {
    "resnet50": dict(
        parameters=25_557_032,  # torchvision ResNet50_Weights.IMAGENET1K_V1 num_params
        forward_flops=lambda side: 2 * 4.089e9 * (side / 224) ** 2,  # torchvision: 4.09 G multiply-adds
        # fp32 training at batch 256 takes 20-30 GB (issue 7): 78-117 MB per 224^2 image.
        peak=lambda side, batch, persistent: (persistent + batch * 78e6 * (side / 224) ** 2,
                                              persistent + batch * 117e6 * (side / 224) ** 2)),
    "vgg16": dict(
        parameters=138_357_544,  # torchvision VGG16_Weights.IMAGENET1K_V1 num_params
        forward_flops=lambda side: 2 * 15.470e9 * (side / 224) ** 2,  # torchvision: 15.47 G
        # CS231n's VGG-16 tally: 24 M activation values (96 MB) per image in the forward pass,
        # ReLU outputs counted apart; in-place ReLUs keep about half to all of that for the
        # backward pass: 50-110 MB per image (vDNN measured 28 GB at batch 256 with workspaces).
        peak=lambda side, batch, persistent: (persistent + batch * 50e6 * (side / 224) ** 2,
                                              persistent + batch * 110e6 * (side / 224) ** 2)),
    "deeplabv3_resnet50": dict(
        parameters=None,  # torchvision publishes the variant with the auxiliary head only
        forward_flops=deeplab_forward_flops,
        # The dilated layer3 and layer4 (9 bottlenecks of 1024-2048 output channels) keep
        # about 12 k channel-maps of (side/8)^2 floats, layers 1-2, the stem and ASPP about
        # as much again: 3-7 kB per input pixel.
        peak=lambda side, batch, persistent: (persistent + batch * 3e3 * side ** 2,
                                              persistent + batch * 7e3 * side ** 2)),
    "unet3d": dict(
        parameters=None,  # our own network, counted by the script
        forward_flops=unet_forward_flops,
        # Full resolution keeps about 360 channel-volumes (encoder, decoder, concatenation,
        # head) of 4-byte voxels; each coarser stage a quarter of the one above: 1.9 kB per
        # voxel, range 1-4 kB.
        peak=lambda side, batch, persistent: (persistent + batch * 1e3 * side ** 3,
                                              persistent + batch * 4e3 * side ** 3)),
    "bert-large": dict(
        parameters=None,  # BERT-large with the masked-LM head; checked through live bytes
        forward_flops=lambda length: length * transformer_forward_flops_per_token(24, 1024, length, 30522, 1),
        peak=lambda length, batch, persistent: tuple(
            f * transformer_peak(24, 1024, 16, 30522, length, batch, persistent) for f in (0.8, 1.25))),
    "gpt2-medium": dict(
        parameters=354_823_168,  # Hugging Face gpt2-medium, tied LM head
        forward_flops=lambda length: length * transformer_forward_flops_per_token(24, 1024, length, 50257),
        peak=lambda length, batch, persistent: tuple(
            f * transformer_peak(24, 1024, 16, 50257, length, batch, persistent) for f in (0.8, 1.25))),
}
SIZE_KEYS = ("image_side", "volume_side", "sequence_length")
SCALING_POWER = {"image_side": 2, "volume_side": 3}
ALIGNMENT_BYTES = 512


class Checker:
    def __init__(self):
        self.failures = []

    def expect(self, condition, message):
        if not condition:
            self.failures.append(message)
        return condition

    def within(self, name, value, low, high):
        return self.expect(low <= value <= high, f"{name}: {value:.4g} is outside [{low:.4g}, {high:.4g}]")


def check_structure(path, check):
    """Ranges inside live allocations; live allocations disjoint and aligned."""
    starts, ends = [], []  # live allocations, sorted by address
    problems = 0
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            fields = line.split()
            if fields[0] == "a":
                address, size = int(fields[5], 16), int(fields[6], 16)
                i = bisect.bisect_left(starts, address)
                overlaps = (i > 0 and ends[i - 1] > address) or (i < len(starts) and starts[i] < address + size)
                problems += not check.expect(not overlaps and address % ALIGNMENT_BYTES == 0,
                                             f"{path}: allocation at {address:x} overlaps or is unaligned")
                starts.insert(i, address)
                ends.insert(i, address + size)
            elif fields[0] == "F":
                i = bisect.bisect_left(starts, int(fields[5], 16))
                del starts[i], ends[i]
            elif fields[0] == "o":
                for k in range(int(fields[8], 16)):
                    address, size = int(fields[9 + 3 * k], 16), int(fields[10 + 3 * k], 16)
                    i = bisect.bisect_right(starts, address) - 1
                    inside = i >= 0 and address + size <= ends[i]
                    problems += not check.expect(inside, f"{path}: seq {fields[1]} range {address:x}+{size:x} "
                                                         "is outside every live allocation")
            if problems > 5:
                return


def check_trace(path, summary, make_traces, check):
    meta = summary["metadata"]
    model = meta.get("model")
    if not check.expect(model in REFERENCE, f"{path}: model {model!r} has no reference figures here"):
        return None
    reference = REFERENCE[model]
    size_key = next((k for k in SIZE_KEYS if k in meta), None)
    check.expect(size_key is not None, f"{path}: no size metadata ({', '.join(SIZE_KEYS)})")
    size, batch, steps = int(meta[size_key]), int(meta["batch"]), int(meta["steps"])
    parameters = int(meta["parameters"])
    kept = int(meta["tensors_per_parameter"].split()[0])
    check.expect(summary["complete"] and summary["unmatched_frees"] == 0, f"{path}: incomplete or unmatched frees")
    check.expect(steps >= 3 and summary["syncs_by_kind"]["device"] == steps,
                 f"{path}: {steps} steps and {summary['syncs_by_kind']['device']} device syncs")
    check.expect(summary["ops_with_flops"] > 0.9 * summary["ops"], f"{path}: most ops should carry FLOPs")
    if reference["parameters"] is not None:
        check.expect(parameters == reference["parameters"], f"{path}: {parameters} parameters, "
                                                            f"published {reference['parameters']}")
    persistent = parameters * FP32_BYTES * kept
    check.within(f"{path}: bytes live at the end / persistent state", summary["live_at_end"]["bytes"] / persistent,
                 1.0, 1.01)
    forward = reference["forward_flops"](size) * batch
    check.within(f"{path}: forward FLOPs / reference", int(meta["forward_flops_per_step"]) / forward, 0.9, 1.1)
    check.within(f"{path}: FLOPs per step / (3 x reference forward)", summary["flops"] / steps / (3 * forward),
                 0.9, 1.1)
    low, high = reference["peak"](size, batch, persistent)
    check.within(f"{path}: peak live bytes", summary["peak_live_bytes"], low, high)
    command = meta.get("command", "")
    arguments = command.partition("scripts/trace_from_torch.py ")[2]
    check.expect(arguments and arguments in make_traces, f"{path}: its command is not in make-traces.sh: {command}")
    return dict(model=model, batch=batch, size_key=size_key, size=size, steps=steps,
                flops_per_step=summary["flops"] / steps, activations=summary["peak_live_bytes"] - persistent)


def check_scaling(figures, check):
    """Several sizes of one model: FLOPs and activations grow with pixels or voxels."""
    by_model = {}
    for f in figures:
        by_model.setdefault((f["model"], f["batch"], f["size_key"]), []).append(f)
    for (model, _, size_key), runs in by_model.items():
        power = SCALING_POWER.get(size_key)
        if power is None or len(runs) < 2:
            continue
        runs.sort(key=lambda f: f["size"])
        base = runs[0]
        for run in runs[1:]:
            expected = (run["size"] / base["size"]) ** power
            what = f"{model} {run['size']} vs {base['size']}"
            check.within(f"{what}: FLOPs ratio / voxel ratio", run["flops_per_step"] / base["flops_per_step"] / expected,
                         0.97, 1.03)
            check.within(f"{what}: activation ratio / voxel ratio", run["activations"] / base["activations"] / expected,
                         0.9, 1.1)


def main():
    cli, root = sys.argv[1], sys.argv[2]
    folder = os.path.join(root, "tests/data/traces/torch")
    with open(os.path.join(folder, "make-traces.sh"), encoding="utf-8") as f:
        make_traces = f.read()
    paths = sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(".trace.gz"))
    # The larger sizes of ladder/ (README.md there) hold their models too.
    ladder = os.path.join(folder, "ladder")
    if os.path.isdir(ladder):
        paths += sorted(os.path.join(ladder, name) for name in os.listdir(ladder) if name.endswith(".trace.gz"))
    check = Checker()
    figures = []
    for path in paths:
        run = subprocess.run([cli, "summary", "--json", path], capture_output=True, text=True)
        if not check.expect(run.returncode == 0, f"{path}: oversub-trace summary failed: {run.stderr.strip()}"):
            continue
        summary = json.loads(run.stdout)
        figure = check_trace(path, summary, make_traces, check)
        if figure:
            figures.append(figure)
            print(f"{os.path.basename(path)}: {figure['steps']} steps, peak {summary['peak_live_bytes'] / GB:.2f} GB, "
                  f"{figure['flops_per_step']:.4g} FLOP per step")
        check_structure(path, check)
    check_scaling(figures, check)
    missing = set(REFERENCE) - {f["model"] for f in figures}
    check.expect(not missing, f"no trace of {', '.join(sorted(missing))}")
    for failure in check.failures:
        print("FAIL", failure)
    return 1 if check.failures else 0


if __name__ == "__main__":
    sys.exit(main())
