"""Recording PyTorch ops on the meta device as an oversub trace (version 2).

Imported by scripts/trace_from_torch.py once torch is known to be importable.

Note [Mapping PyTorch to the trace]
~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~
The model runs on the meta device: tensors have shapes, strides and storages but no
data, so nothing is computed and any size is cheap. A TorchDispatchMode sees every
aten op below autograd (forward, backward and the optimizer alike) with its inputs
and outputs.

- Allocation = tensor storage. Each distinct storage of a meta tensor becomes one
  allocation (`a` line), the way PyTorch with PYTORCH_NO_CUDA_MEMORY_CACHING=1 calls
  cudaMalloc once per storage. Views share their base's storage and allocate nothing.
  Storages of 0 bytes are left out.
- Free = storage death. We hold a StorageWeakRef per live storage and check them
  before every op (and at the end of each step): a storage whose last tensor died since
  the last check is freed there (`f` then `F`: a synchronous free). Holding the weak
  reference keeps the StorageImpl's address from being reused while we track it, so
  its address (`cdata`) is a safe key.
- Addresses come from AddressSpace: best fit over one address range, 512-byte
  alignment (the CUDA caching allocator's rounding), freed ranges coalesced and
  reused, so live allocations never overlap and addresses repeat the way a caching
  allocator's do.
- Op = one aten op that does work. Views, `detach` and ops that only allocate
  (`empty*`) launch nothing on a GPU and give no `o` line; every other op on meta
  tensors does. Its ranges are the byte extents its tensors cover in their storages,
  merged per storage: inputs `r`, outputs in new storages `w`, arguments the schema
  marks as written `rw` (`w` for out= arguments and for ops that overwrite without
  reading, such as copy_ and fill_).
- Kind: what PyTorch's CUDA build calls for the op: `cublas` for matrix products,
  `cudnn` for convolutions and batch norm, `kernel` for the rest; batch and parameter
  uploads are `copy` h2d.
- Timestamps are not times: ts_ns is the event's seq (event order), since nothing
  ran. A device sync (`s ... device 0`) closes each training step, where a real loop
  calls loss.item().

Note [Counting FLOPs]
~~~~~~~~~~~~~~~~~~~~~
One multiply-add is 2 FLOPs. Matrix products: 2*M*N*K (batched: times the batch).
Convolutions: 2 * output elements * Cin/groups * kernel volume (transposed: 2 * input
elements * Cout/groups * kernel volume), the same for 2D and 3D. convolution_backward:
that figure once for grad_input and once for grad_weight (each if computed), plus the
grad_output element count for grad_bias. Every other op: the element count of its
largest tensor, input or output (elementwise ops: their output; reductions: their
input). Copies count none. docs/trace-format.md states the same rule.
"""

import bisect
import gzip

import torch
from torch.multiprocessing.reductions import StorageWeakRef
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

FORMAT_VERSION = 2
ALIGNMENT_BYTES = 512
ADDRESS_BASE = 0x7F0000000000
TID = 1
STREAM = 0

# Matrix products and what PyTorch's CUDA build hands to cuBLAS or cuDNN.
CUBLAS_OPS = {"mm", "addmm", "bmm", "baddbmm", "addbmm", "mv", "addmv", "dot", "vdot"}
CUDNN_OPS = {"convolution", "convolution_backward", "native_batch_norm", "native_batch_norm_backward"}
# In-place ops that overwrite their target without reading it.
OVERWRITING_OPS = {"copy_", "fill_", "zero_", "bernoulli_", "normal_", "uniform_", "random_", "exponential_"}
# Ops that only allocate: a caching allocator hands out memory, no kernel runs.
ALLOCATING_OPS = {"empty", "empty_like", "empty_strided", "new_empty", "new_empty_strided"}


def _storage(tensor):
    # torch 2.x has untyped_storage(); 1.13 (Debian's) has storage().
    if hasattr(tensor, "untyped_storage"):
        return tensor.untyped_storage()
    return tensor.storage()


def _round_up(value, alignment):
    return (value + alignment - 1) // alignment * alignment


def _meta_tensors(values):
    return [v for v in values if isinstance(v, torch.Tensor) and v.device.type == "meta"]


def _byte_extent(tensor):
    """(first, end) bytes the tensor covers within its storage, or None when empty."""
    if tensor.numel() == 0:
        return None
    span = sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride()))
    first = tensor.storage_offset() * tensor.element_size()
    return first, first + (span + 1) * tensor.element_size()


class AddressSpace:
    """Best-fit placement with reuse (Note [Mapping PyTorch to the trace])."""

    def __init__(self, base=ADDRESS_BASE, alignment=ALIGNMENT_BYTES):
        self.alignment = alignment
        self.top = base  # everything at or above is unused
        self.free = []  # sorted (address, bytes) holes below top, coalesced
        self.high_water_bytes = 0
        self.base = base

    def allocate(self, nbytes):
        size = _round_up(max(nbytes, 1), self.alignment)
        best = None
        for i, (_, hole) in enumerate(self.free):
            if hole >= size and (best is None or hole < self.free[best][1]):
                best = i
        if best is None:
            address = self.top
            self.top += size
            self.high_water_bytes = max(self.high_water_bytes, self.top - self.base)
            return address
        address, hole = self.free[best]
        if hole == size:
            del self.free[best]
        else:
            self.free[best] = (address + size, hole - size)
        return address

    def release(self, address, nbytes):
        size = _round_up(max(nbytes, 1), self.alignment)
        i = bisect.bisect_left(self.free, (address, 0))
        if i > 0 and self.free[i - 1][0] + self.free[i - 1][1] == address:
            i -= 1
            address, size = self.free[i][0], self.free[i][1] + size
            del self.free[i]
        if i < len(self.free) and address + size == self.free[i][0]:
            size += self.free[i][1]
            del self.free[i]
        if address + size == self.top:
            self.top = address
        else:
            self.free.insert(i, (address, size))


class TraceBuilder:
    """Collects events, then writes them with names numbered in file order."""

    def __init__(self):
        self.seq = 0
        self.events = []  # (tag, fields) with fields a list of ints, words and ("name", text)
        self.metadata = []  # (key, value)

    def next_seq(self):
        self.seq += 1
        return self.seq

    def event(self, tag, *fields):
        seq = self.next_seq()
        self.events.append((tag, [seq, seq, TID, *fields]))
        return seq

    def flops(self, seq, flops):
        self.events.append(("c", [seq, flops]))

    def write(self, path):
        names = {}
        lines = [f"v {FORMAT_VERSION:x} oversub-trace"]

        def name_id(text):
            if text not in names:
                names[text] = len(names) + 1
                escaped = text.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")
                lines.append(f"n {names[text]:x} {escaped}")
            return names[text]

        def field(value):
            if isinstance(value, tuple):  # ("name", text)
                return f"{name_id(value[1]):x}"
            if isinstance(value, str):
                return value
            return f"{value:x}"

        for key, value in self.metadata:
            key_id, value_id = name_id(key), name_id(value)
            lines.append(f"m {key_id:x} {value_id:x}")
        for tag, fields in self.events:
            text = " ".join(field(f) for f in fields)  # may define names first
            lines.append(f"{tag} {text}")
        lines.append(f"x {self.seq + 1:x} 0")
        data = ("\n".join(lines) + "\n").encode()
        if path.endswith(".gz"):
            # mtime=0: the same capture gives the same bytes.
            with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=9, mtime=0) as out:
                out.write(data)
        else:
            with open(path, "wb") as out:
                out.write(data)
        return len(data)


class _LiveStorage:
    __slots__ = ("alloc_id", "address", "nbytes", "ref")

    def __init__(self, alloc_id, address, nbytes, ref):
        self.alloc_id, self.address, self.nbytes, self.ref = alloc_id, address, nbytes, ref


def _op_name(func):
    schema = func._schema
    return schema.name + ("." + schema.overload_name if schema.overload_name else "")


def _bound_arguments(func, args, kwargs):
    bound = {}
    for i, argument in enumerate(func._schema.arguments):
        if i < len(args):
            bound[argument.name] = args[i]
        elif argument.name in kwargs:
            bound[argument.name] = kwargs[argument.name]
    return bound


def _conv_flops(weight, input, output, transposed):
    per_element = weight.numel() // weight.shape[0]  # Cin/groups*k (transposed: Cout/groups*k)
    return 2 * (input.numel() if transposed else output.numel()) * per_element


def count_flops(base_name, bound, inputs, outputs):
    """FLOPs of one op (Note [Counting FLOPs]), from its bound arguments and meta tensors."""
    if base_name in ("mm", "addmm"):
        a, b = (bound["self"], bound["mat2"]) if base_name == "mm" else (bound["mat1"], bound["mat2"])
        return 2 * a.shape[0] * a.shape[1] * b.shape[1]
    if base_name in ("bmm", "baddbmm"):
        a, b = (bound["self"], bound["mat2"]) if base_name == "bmm" else (bound["batch1"], bound["batch2"])
        return 2 * a.shape[0] * a.shape[1] * a.shape[2] * b.shape[2]
    if base_name in ("mv", "addmv"):
        a = bound["self"] if base_name == "mv" else bound["mat"]
        return 2 * a.shape[0] * a.shape[1]
    if base_name in ("dot", "vdot"):
        return 2 * bound["self"].numel()
    if base_name == "convolution":
        return _conv_flops(bound["weight"], bound["input"], outputs[0], bound["transposed"])
    if base_name == "convolution_backward":
        grad_output, weight = bound["grad_output"], bound["weight"]
        one = _conv_flops(weight, bound["input"], grad_output, bound["transposed"])
        mask = bound["output_mask"]
        return one * bool(mask[0]) + one * bool(mask[1]) + grad_output.numel() * bool(mask[2])
    return max((t.numel() for t in inputs + outputs), default=0)


class Recorder(TorchDispatchMode):
    """Observes aten ops on meta tensors and records them into a TraceBuilder."""

    def __init__(self, builder):
        super().__init__()
        self.builder = builder
        self.addresses = AddressSpace()
        self.live = {}  # storage cdata -> _LiveStorage
        self.next_alloc_id = 1
        self.untracked_storages = 0  # storages first seen as inputs (made outside the mode)
        self.flops_total = 0

    # --- allocations -------------------------------------------------------------
    def track(self, tensor):
        """The live storage behind `tensor`, allocating it on first sight (None: 0 bytes)."""
        storage = _storage(tensor)
        nbytes = storage.nbytes()
        if nbytes == 0:
            return None
        ref = StorageWeakRef(storage)
        live = self.live.get(ref.cdata)
        if live is not None:
            return live
        address = self.addresses.allocate(nbytes)
        live = _LiveStorage(self.next_alloc_id, address, nbytes, ref)
        self.next_alloc_id += 1
        self.live[ref.cdata] = live
        self.builder.event("a", live.alloc_id, address, nbytes, STREAM, 0, "malloc")
        return live

    def sweep(self):
        """Frees every tracked storage whose last tensor died since the last sweep."""
        dead = [key for key, live in self.live.items() if live.ref.expired()]
        for key in sorted(dead, key=lambda k: self.live[k].alloc_id):  # deterministic order
            live = self.live.pop(key)
            self.builder.event("f", live.alloc_id, live.address, STREAM)
            self.builder.event("F", live.alloc_id, live.address, STREAM)
            self.addresses.release(live.address, live.nbytes)

    # --- explicit events -----------------------------------------------------------
    def upload(self, *tensors):
        """Host-to-device copies into `tensors` (a batch, or parameters being uploaded)."""
        for tensor in tensors:
            live = self.track(tensor)
            extent = _byte_extent(tensor)
            if live is not None and extent is not None:
                self.builder.event("o", "copy", ("name", "aten::_to_copy"), STREAM, "h2d", 1,
                                   live.address + extent[0], extent[1] - extent[0], "w")

    def synchronize(self):
        self.sweep()
        self.builder.event("s", "device", 0)

    # --- ops -------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        self.sweep()
        base_name = func._schema.name.split("::")[-1]
        bound = _bound_arguments(func, args, kwargs)
        accesses = {}  # cdata -> [first, end, bits, live]; bits: 1 read, 2 write

        def note(tensor, bits):
            live = self.track(tensor)
            extent = _byte_extent(tensor)
            if live is None or extent is None:
                return
            entry = accesses.setdefault(live.ref.cdata, [extent[0], extent[1], 0, live])
            entry[0], entry[1] = min(entry[0], extent[0]), max(entry[1], extent[1])
            entry[2] |= bits

        before = len(self.live)
        inputs = _meta_tensors(tree_flatten((args, kwargs))[0])
        for tensor in inputs:
            self.track(tensor)
        self.untracked_storages += len(self.live) - before
        known = set(self.live)

        mutated = False
        for argument in func._schema.arguments:
            value = bound.get(argument.name)
            tensors = _meta_tensors(tree_flatten(value)[0])
            info = argument.alias_info
            if info is not None and info.is_write:
                overwrite = getattr(argument, "is_out", False) or base_name in OVERWRITING_OPS
                for tensor in tensors:
                    note(tensor, 2 if overwrite else 3)
                mutated = mutated or bool(tensors)
            else:
                for tensor in tensors:
                    note(tensor, 1)

        out = func(*args, **kwargs)

        outputs = _meta_tensors(tree_flatten(out)[0])
        allocated = False
        for tensor in outputs:
            live = self.track(tensor)
            if live is not None and live.ref.cdata not in known:
                allocated = True
                note(tensor, 2)
        if base_name in ALLOCATING_OPS or not (allocated or mutated):
            return out  # a view, detach, or a bare allocation: no kernel

        kind = "cublas" if base_name in CUBLAS_OPS else "cudnn" if base_name in CUDNN_OPS else "kernel"
        ranges = []
        for first, end, bits, live in sorted(accesses.values(), key=lambda e: (e[3].address + e[0])):
            ranges += [live.address + first, end - first, {1: "r", 2: "w", 3: "rw"}[bits]]
        seq = self.builder.event("o", kind, ("name", _op_name(func)), STREAM, "-",
                                 len(ranges) // 3, *ranges)
        flops = count_flops(base_name, bound, inputs, outputs)
        if flops:
            self.builder.flops(seq, flops)
            self.flops_total += flops
        return out
