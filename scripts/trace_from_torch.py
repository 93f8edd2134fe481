#!/usr/bin/env python3
"""trace_from_torch.py: record real PyTorch training steps as an oversub trace, without a GPU.

    python3 scripts/trace_from_torch.py --model resnet50 --batch 256 -o resnet50.trace.gz

The model runs on PyTorch's meta device, so nothing is computed and any batch or
resolution costs the same seconds. Every aten op of each training step (forward,
backward, optimizer) is observed with its tensors' storages and written in oversub's
trace format, version 2 (docs/trace-format.md), with its FLOPs and a metadata header.
How PyTorch maps to the trace: Note [Mapping PyTorch to the trace] in
torch_trace_recorder.py. An output ending in .gz is gzip-compressed, which
oversub-trace reads as it is.

Needs PyTorch and torchvision, on the CPU: Debian's python3-torch/python3-torchvision
(1.13) or PyPI's torch/torchvision. Exit status: 0 success, 2 bad arguments,
3 PyTorch missing, 4 the capture failed (an op without a meta kernel).
"""

import argparse
import os
import shlex
import subprocess
import sys
import time

EXIT_USAGE = 2
EXIT_NO_TORCH = 3
EXIT_CAPTURE_FAILED = 4
DEBIAN_PYTHON = "/usr/bin/python3"


def _debian_python_has_torch():
    if os.path.realpath(sys.executable) == os.path.realpath(DEBIAN_PYTHON) or not os.access(DEBIAN_PYTHON, os.X_OK):
        return False
    probe = subprocess.run([DEBIAN_PYTHON, "-c", "import torch, torchvision"], capture_output=True)
    return probe.returncode == 0


def import_torch_or_exit():
    try:
        import torch  # noqa: F401
        import torchvision  # noqa: F401
    except ImportError as error:
        hint = [f"trace_from_torch.py: cannot import PyTorch with {sys.executable}: {error}",
                "Install PyTorch and torchvision for the CPU (no GPU is needed), one of:",
                "  Debian/Ubuntu:  sudo apt-get install python3-torch python3-torchvision",
                f"                  and run this script with {DEBIAN_PYTHON}",
                "  PyPI:           python3 -m pip install torch torchvision"]
        if _debian_python_has_torch():
            hint.append(f"{DEBIAN_PYTHON} already has them: {DEBIAN_PYTHON} {' '.join(map(shlex.quote, sys.argv))}")
        print("\n".join(hint), file=sys.stderr)
        sys.exit(EXIT_NO_TORCH)


def register_missing_meta_kernels(torch):
    """Shape-only meta kernels for the ops that lack one (torch 1.13: convolution_backward,
    _adaptive_avg_pool2d_backward, nll_loss2d_forward). Their outputs' shapes are exact
    (each gradient is shaped like what it is the gradient of), so no op has to run at a
    reduced size. Returns the names registered, for the trace header."""
    kernels = {
        "convolution_backward": lambda grad_output, input, weight, bias_sizes, stride, padding, dilation, transposed,
        output_padding, groups, output_mask: (
            torch.empty_like(input) if output_mask[0] else None,
            torch.empty_like(weight) if output_mask[1] else None,
            grad_output.new_empty(bias_sizes) if output_mask[2] and bias_sizes is not None else None),
        "_adaptive_avg_pool2d_backward": lambda grad_output, input: torch.empty_like(input),
        "nll_loss2d_forward": lambda input, target, weight, reduction, ignore_index: (
            input.new_empty(target.shape if reduction == 0 else ()), input.new_empty(())),
    }
    registered = []
    library = torch.library.Library("aten", "IMPL", "Meta")
    for name, kernel in kernels.items():
        if not torch._C._dispatch_has_kernel_for_dispatch_key("aten::" + name, "Meta"):
            library.impl(name, kernel)
            registered.append("aten::" + name)
    return library, registered


def use_fused_dropout(torch):
    """On CUDA, dropout in training runs the fused native_dropout kernel, which keeps a
    bool mask; on the meta device PyTorch would take the CPU path (a float mask four
    times as large). Route F.dropout the CUDA way so the trace holds CUDA's tensors."""
    functional = torch.nn.functional
    original = functional.dropout

    def dropout(input, p=0.5, training=True, inplace=False):
        if training and 0 < p < 1 and input.numel() > 0 and not inplace:
            return torch.native_dropout(input, p, True)[0]
        return original(input, p, training, inplace)

    functional.dropout = dropout


def parse_arguments(models):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sizes = "; ".join(f"{name}: batch {b}, {what} {s}" for name, (_, b, s, what) in models.items())
    parser.add_argument("--model", required=True, choices=sorted(models))
    parser.add_argument("--batch", type=int, help="samples per step (default per model)")
    parser.add_argument("--size", type=int, help=f"image side, volume side or sequence length. Defaults: {sizes}")
    parser.add_argument("--steps", type=int, default=4, help="training steps to record (default 4)")
    parser.add_argument("-o", "--output", required=True, help="trace file; a name ending in .gz is gzip-compressed")
    arguments = parser.parse_args()
    if arguments.steps < 1 or (arguments.batch is not None and arguments.batch < 1) or \
            (arguments.size is not None and arguments.size < 1):
        parser.error("--steps, --batch and --size must be positive")
    return arguments


def capture(spec, steps, recorder):
    """Builds the model on the meta device and records `steps` training steps."""
    model = spec.build().to("meta").train()
    parameters = list(model.parameters())
    recorder.upload(*parameters, *model.buffers())  # model.cuda()
    optimizer = spec.make_optimizer(parameters)
    forward_flops = []
    with recorder:
        for _ in range(steps):
            batch = spec.make_batch()
            recorder.upload(*batch)
            # set_to_none=False: gradients persist across steps (and are zeroed in place).
            optimizer.zero_grad(set_to_none=False)
            before = recorder.flops_total
            loss = spec.loss(model, batch)
            forward_flops.append(recorder.flops_total - before)
            loss.backward()
            optimizer.step()
            del batch, loss
            recorder.synchronize()  # loss.item() in a real loop
    return model, parameters, forward_flops


def main():
    import_torch_or_exit()
    import torch

    import torch_trace_models
    import torch_trace_recorder

    arguments = parse_arguments(torch_trace_models.MODELS)
    make_spec, default_batch, default_size, size_meaning = torch_trace_models.MODELS[arguments.model]
    batch = arguments.batch or default_batch
    size = arguments.size or default_size
    try:
        spec = make_spec(batch, size)
    except ValueError as error:
        print(f"trace_from_torch.py: {error}", file=sys.stderr)
        return EXIT_USAGE
    library, meta_kernels = register_missing_meta_kernels(torch)
    use_fused_dropout(torch)

    builder = torch_trace_recorder.TraceBuilder()
    recorder = torch_trace_recorder.Recorder(builder)
    started = time.monotonic()
    try:
        model, parameters, forward_flops = capture(spec, arguments.steps, recorder)
    except (NotImplementedError, RuntimeError, ValueError) as error:
        print(f"trace_from_torch.py: capturing {arguments.model} failed: {str(error).splitlines()[0]}\n"
              "An aten op without a meta kernel needs a shape-only one in register_missing_meta_kernels().",
              file=sys.stderr)
        return EXIT_CAPTURE_FAILED
    del library

    parameter_count = sum(p.numel() for p in parameters)
    command = "python3 scripts/trace_from_torch.py " + " ".join(map(shlex.quote, sys.argv[1:]))
    builder.metadata = [
        ("model", spec.name),
        ("description", spec.description),
        ("batch", str(batch)),
        (size_meaning.replace(" ", "_"), str(size)),
        ("input", spec.inputs),
        ("dtype", "float32"),
        ("parameters", str(parameter_count)),
        ("optimizer", spec.optimizer),
        ("tensors_per_parameter", f"{spec.tensors_per_parameter} (weight, gradient, optimizer state)"),
        ("steps", str(arguments.steps)),
        ("step_end", "a device sync ('s ... device 0') ends each step"),
        ("forward_flops_per_step", str(forward_flops[-1])),
        ("flops_rule", "2 per multiply-add for matmul and convolution (backward likewise); other ops: "
                       "elements of their largest tensor; see docs/trace-format.md"),
        ("memory", "one allocation per tensor storage, freed when the storage dies; best-fit addresses, "
                   "512-byte aligned, freed ranges reused"),
        ("op_kinds", "cublas: matrix products; cudnn: convolution and batch norm; kernel: other aten ops; "
                     "copy h2d: parameter and batch uploads"),
        ("dropout", "fused as on CUDA (native_dropout, bool mask)"),
        ("timestamps", "event order, not time: ts_ns equals seq"),
        ("capture", f"PyTorch {torch.__version__} meta device and TorchDispatchMode; no compute"),
        ("meta_kernels_added", ", ".join(meta_kernels) + " (shape-only)" if meta_kernels else "none"),
        ("scaling", "none: every op ran at full size"),
        ("storages_made_outside_capture", str(recorder.untracked_storages)),
        ("command", command),
    ]
    text_bytes = builder.write(arguments.output)
    del model
    print(f"{arguments.output}: {spec.name} batch {batch} {size_meaning} {size}, {arguments.steps} steps, "
          f"{builder.seq} events ({text_bytes} bytes of text), {recorder.flops_total / arguments.steps:.4g} FLOP "
          f"per step, {parameter_count} parameters, {time.monotonic() - started:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
