"""A minimal reader of oversub traces for the integration tests (the format is
documented in docs/trace-format.md; tracer/reader.cpp is the full reader).
Only the lines the tests need: names, allocations, frees and ops."""
from dataclasses import dataclass, field


@dataclass
class Op:
    seq: int
    kind: str
    name: str
    stream: int
    ranges: list  # (address, bytes, access)


@dataclass
class Trace:
    names: dict = field(default_factory=dict)
    allocs: list = field(default_factory=list)  # (id, address, bytes, kind)
    frees: list = field(default_factory=list)   # (id, address)
    ops: list = field(default_factory=list)
    complete: bool = False


def read(path: str) -> Trace:
    t = Trace()
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or not lines[0].startswith("v 1 oversub-trace"):
        raise ValueError(f"{path}: not an oversub trace (first line {lines[:1]})")
    for line in lines[1:]:
        fields = line.split(" ")
        tag = fields[0]
        if tag == "n":
            t.names[int(fields[1], 16)] = " ".join(fields[2:])
        elif tag == "a":
            t.allocs.append((int(fields[4], 16), int(fields[5], 16), int(fields[6], 16), fields[9]))
        elif tag == "F":
            t.frees.append((int(fields[4], 16), int(fields[5], 16)))
        elif tag == "o":
            name = t.names.get(int(fields[5], 16), "")
            count = int(fields[8], 16)
            ranges = [(int(fields[9 + 3 * i], 16), int(fields[10 + 3 * i], 16), fields[11 + 3 * i]) for i in range(count)]
            t.ops.append(Op(int(fields[1], 16), fields[4], name, int(fields[6], 16), ranges))
        elif tag == "x":
            t.complete = True
    t.ops.sort(key=lambda o: o.seq)
    return t
