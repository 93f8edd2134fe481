#!/usr/bin/env python3
"""Issue 4 (b): the shim's trace of a reference training program agrees with what the
program knows it did, as written to its manifest (Note [Workload manifest] in
tests/workloads/common/workload.h).

  check_workload_trace.py SHIM PROGRAM TRACE MANIFEST [--summary OVERSUB_TRACE_CLI] [-- FLAG...]

The program runs once under LD_PRELOAD=SHIM with OVERSUB_MODE=passthrough,
OVERSUB_TRACE=TRACE and WORKLOAD_MANIFEST=MANIFEST. Then:
  - allocations: the trace's `a` lines of device memory (kind `host`, pinned host memory,
    is left out), in seq order, are the manifest's allocs (same address and bytes, same
    order) plus allocations whose call site is inside libcublas or libcudnn (the nearest
    frame outside the runtime, driver and shim); their number is reported. Any other
    allocation fails the test.
  - frees: every manifest free has an `F` (free completed) line for the allocation the
    manifest allocated at that address, and no program allocation has an `F` the manifest
    does not know of.
  - ops: the trace has as many ops of each recorded name as the manifest (a cudnn* name is
    an op of kind cudnn, cublas* of kind cublas, anything else a kernel), and the i-th of
    each name in seq order contains every range of the i-th manifest op: a library op
    with a range that covers it with the same access; a kernel with the whole allocation
    that holds the pointer, access rw (the shim cannot tell reads from writes in a kernel).
  - with --summary: `oversub-trace summary --json TRACE` counts as many device allocations
    as the program made, manifest allocs plus the library's own, and reports a complete trace.
"""
import argparse
import json
import os
import subprocess
import sys
from collections import Counter

import trace_file

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])

MAX_REPORTED = 10  # problems of one kind printed before the rest are counted
RUNTIME_MODULES = ("libcudart.so", "libcuda.so", "liboversub")
LIBRARY_MODULES = ("libcublas.so", "libcublasLt.so", "libcudnn.so")


class Manifest:
    def __init__(self, path):
        self.events = []  # ("alloc", address, bytes) | ("free", address) | ("op", name, [(address, bytes, access)])
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                fields = line.split()
                try:
                    if fields[0] == "alloc" and len(fields) == 3:
                        self.events.append(("alloc", int(fields[1], 16), int(fields[2], 16)))
                    elif fields[0] == "free" and len(fields) == 2:
                        self.events.append(("free", int(fields[1], 16)))
                    elif fields[0] == "op" and len(fields) >= 3:
                        ranges = []
                        for r in fields[2:]:
                            address, size, access = r.split(":")
                            if access not in ("r", "w", "rw"):
                                raise ValueError(f"access {access!r}")
                            ranges.append((int(address, 16), int(size, 16), access))
                        self.events.append(("op", fields[1], ranges))
                    else:
                        raise ValueError("unknown line")
                except (ValueError, IndexError) as e:
                    raise ValueError(f"{path}:{number}: malformed manifest line {line!r} ({e})") from e
        self.allocs = [e for e in self.events if e[0] == "alloc"]
        self.frees = [e for e in self.events if e[0] == "free"]
        self.ops = [e for e in self.events if e[0] == "op"]


def op_kind(name):
    if name.startswith("cudnn"):
        return "cudnn"
    if name.startswith("cublas"):
        return "cublas"
    return "kernel"


def name_matches(kind, manifest_name, trace_name):
    if kind != "kernel":
        return trace_name == manifest_name
    # A kernel's trace name is its mangled symbol: the identifier appears length-prefixed.
    return trace_name == manifest_name or f"{len(manifest_name)}{manifest_name}" in trace_name


def module_name(frame):
    return os.path.basename(trace_file.frame_module(frame))


def library_caller(trace, alloc):
    """The frame of the nearest caller outside the runtime, driver and shim if it lies in
    libcublas or libcudnn, else None."""
    for frame in trace.frames(alloc.site):
        module = module_name(frame)
        if module.startswith(RUNTIME_MODULES):
            continue
        return frame if module.startswith(LIBRARY_MODULES) else None
    return None


class Problems:
    def __init__(self):
        self.by_kind = {}

    def add(self, kind, text):
        self.by_kind.setdefault(kind, []).append(text)

    def report(self, prefix):
        for kind, texts in self.by_kind.items():
            for text in texts[:MAX_REPORTED]:
                print(f"{prefix}: {kind}: {text}", file=sys.stderr)
            if len(texts) > MAX_REPORTED:
                print(f"{prefix}: {kind}: ... and {len(texts) - MAX_REPORTED} more", file=sys.stderr)
        return bool(self.by_kind)


def fmt_range(r):
    return f"{r[0]:x}:{r[1]:x}:{r[2]}"


def check_allocations(trace, manifest, problems):
    """Pairs the manifest's allocs with the trace's program allocations; returns
    ({manifest alloc index: trace Alloc}, [library Alloc])."""
    program, library = [], []
    for a in trace.alloc_events:
        if a.kind == "host":
            continue  # pinned host memory (cudaMallocHost): the manifest lists device memory only
        (library if library_caller(trace, a) else program).append(a)
    # First as multisets, which names the odd ones out, then in order.
    extra = Counter((t.address, t.bytes) for t in program) - Counter((m[1], m[2]) for m in manifest.allocs)
    missing = Counter((m[1], m[2]) for m in manifest.allocs) - Counter((t.address, t.bytes) for t in program)
    for t in program:
        if extra[(t.address, t.bytes)] > 0:
            extra[(t.address, t.bytes)] -= 1
            frames = trace.frames(t.site)
            problems.add("allocations", f"the trace has an allocation that neither the program (manifest) nor "
                         f"libcublas/libcudnn made: seq {t.seq:x} at {t.address:x} ({t.bytes} bytes, {t.kind}), "
                         f"call site {frames[:4] if frames else 'not captured'}")
    for (address, size), count in sorted(missing.items()):
        problems.add("allocations", f"the manifest allocates {address:x} ({size} bytes) {count} more time(s) than "
                     "the trace has `a` lines for it")
    same_multiset = "allocations" not in problems.by_kind
    pairs = {}
    for i, (m, t) in enumerate(zip(manifest.allocs, program)):
        if (m[1], m[2]) == (t.address, t.bytes):
            pairs[i] = t
        elif same_multiset:  # otherwise the misalignment is explained above
            problems.add("allocations", f"out of order: manifest alloc #{i} is {m[1]:x} ({m[2]} bytes) but the "
                         f"trace's program allocation #{i} (seq {t.seq:x}) is {t.address:x} ({t.bytes} bytes)")
    return pairs, library


def check_frees(trace, manifest, pairs, problems):
    completed = {(e.alloc_id, e.address) for e in trace.free_events if e.completed}
    live, freed_ids, alloc_index = {}, set(), 0
    for event in manifest.events:
        if event[0] == "alloc":
            live[event[1]] = pairs.get(alloc_index)
            alloc_index += 1
        elif event[0] == "free":
            if event[1] not in live:
                problems.add("frees", f"the manifest frees {event[1]:x}, which it never allocated")
                continue
            t = live.pop(event[1])
            if t is None:
                continue  # already reported as an allocation mismatch
            freed_ids.add(t.alloc_id)
            if (t.alloc_id, t.address) not in completed:
                problems.add("frees", f"the manifest frees {t.address:x} (trace alloc id {t.alloc_id:x}) but the "
                             "trace has no `F` line for it")
    program_ids = {t.alloc_id for t in pairs.values()}
    for alloc_id, address in sorted(completed):
        if alloc_id in program_ids and alloc_id not in freed_ids:
            problems.add("frees", f"the trace completes a free of {address:x} (alloc id {alloc_id:x}) "
                         "that the program never made")


def check_ops(trace, manifest, problems):
    """Returns {name: count} of the manifest ops checked."""
    # The live allocations when each op was called: a kernel's ranges are whole allocations.
    live, op_allocs = {}, []
    for event in manifest.events:
        if event[0] == "alloc":
            live[event[1]] = event[2]
        elif event[0] == "free":
            live.pop(event[1], None)
        else:
            op_allocs.append(dict(live) if op_kind(event[1]) == "kernel" else None)
    by_name = {}
    for (_, name, ranges), allocs in zip(manifest.ops, op_allocs):
        by_name.setdefault(name, []).append((ranges, allocs))
    counts = {}
    for name, calls in by_name.items():
        kind = op_kind(name)
        traced = [o for o in trace.ops if o.kind == kind and name_matches(kind, name, o.name)]
        counts[name] = len(calls)
        if len(traced) != len(calls):
            problems.add("ops", f"the manifest has {len(calls)} {name} calls but the trace has {len(traced)} "
                         f"ops of kind {kind} with that name")
        for i, ((ranges, allocs), op) in enumerate(zip(calls, traced)):
            for r in ranges:
                if kind == "kernel":
                    holder = [(base, size) for base, size in allocs.items() if base <= r[0] < base + size]
                    if not holder:
                        problems.add("ops", f"{name} #{i}: manifest range {fmt_range(r)} is in no live allocation")
                        continue
                    want = (holder[0][0], holder[0][1], "rw")
                    ok = want in op.ranges
                    expected = f"the whole allocation {fmt_range(want)}"
                else:
                    ok = any(a <= r[0] and r[0] + r[1] <= a + b and access == r[2] for a, b, access in op.ranges)
                    expected = "a range containing it with the same access"
                if not ok:
                    shown = " ".join(fmt_range(t) for t in op.ranges[:12]) + (" ..." if len(op.ranges) > 12 else "")
                    problems.add("ops", f"{name} #{i} (trace seq {op.seq:x}): manifest range {fmt_range(r)} wants "
                                 f"{expected}; the trace op has {len(op.ranges)} ranges: {shown}")
    return counts


def check_summary(tool, trace_path, expected_allocations, problems):
    r = subprocess.run([tool, "summary", "--json", trace_path], capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        problems.add("summary", f"`oversub-trace summary --json` exited {r.returncode}: {r.stderr.strip()}")
        return
    summary = json.loads(r.stdout)
    host = summary.get("allocations_by_kind", {}).get("host", {}).get("count", 0)
    if summary.get("allocations") != expected_allocations + host:
        problems.add("summary", f"`oversub-trace summary` reports {summary.get('allocations')} allocations "
                     f"({host} of pinned host memory); the program made {expected_allocations} of device memory "
                     "(manifest allocs + library-internal ones)")
    if summary.get("complete") is not True or summary.get("dropped_events") != 0:
        problems.add("summary", f"the summary says complete={summary.get('complete')}, "
                     f"dropped_events={summary.get('dropped_events')}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("shim")
    parser.add_argument("program")
    parser.add_argument("trace")
    parser.add_argument("manifest")
    parser.add_argument("--summary", help="the oversub-trace CLI, to check its allocation count")
    argv = sys.argv[1:]
    flags = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.flags = flags
    name = os.path.basename(args.program)
    prefix = f"check_workload_trace: {name} {' '.join(args.flags)}"
    for path in (args.trace, args.manifest):
        if os.path.exists(path):
            os.remove(path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OVERSUB_", "SIMCUDA_", "WORKLOAD_"))}
    env.update(LD_PRELOAD=args.shim, OVERSUB_MODE="passthrough", OVERSUB_TRACE=args.trace,
               WORKLOAD_MANIFEST=args.manifest)
    run = subprocess.run([args.program, *args.flags], env=program_env(env), capture_output=True, text=True, timeout=300)
    print(run.stdout, end="")
    if run.returncode != 0:
        print(run.stderr, end="", file=sys.stderr)
        print(f"{prefix}: the program exited {run.returncode} under the shim", file=sys.stderr)
        return 1
    trace = trace_file.read(args.trace)
    manifest = Manifest(args.manifest)
    problems = Problems()
    if not trace.complete or trace.dropped_events:
        problems.add("trace", f"the trace is incomplete or dropped events (complete={trace.complete}, "
                     f"dropped={trace.dropped_events}): nothing below can be trusted")
    if not manifest.allocs or not manifest.ops:
        problems.add("manifest", f"the manifest is empty ({len(manifest.allocs)} allocs, {len(manifest.ops)} ops): "
                     "did the program see WORKLOAD_MANIFEST?")
    pairs, library = check_allocations(trace, manifest, problems)
    check_frees(trace, manifest, pairs, problems)
    counts = check_ops(trace, manifest, problems)
    if args.summary:
        check_summary(args.summary, args.trace, len(manifest.allocs) + len(library), problems)
    callers = sorted({library_caller(trace, a).split(" ", 1)[-1] for a in library})
    print(f"manifest: {len(manifest.allocs)} allocs, {len(manifest.frees)} frees, ops "
          + ", ".join(f"{n} {c}" for n, c in sorted(counts.items())))
    print(f"library-internal allocations in the trace: {len(library)} (from {', '.join(callers) or 'none'})")
    failed = problems.report(prefix)
    print(f"{name} trace against its manifest: {'FAIL' if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
