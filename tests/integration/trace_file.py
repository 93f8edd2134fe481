"""A minimal reader of oversub traces for the integration tests (the format is
documented in docs/trace-format.md; tracer/reader.cpp is the full reader).
Only the lines the tests need: names, call sites, allocations, frees and ops."""
from dataclasses import dataclass, field


@dataclass
class Op:
    seq: int
    kind: str
    name: str
    stream: int
    ranges: list  # (address, bytes, access)


@dataclass
class Alloc:
    seq: int
    alloc_id: int
    address: int
    bytes: int
    stream: int
    site: int  # call-site id, 0 when no stack was captured
    kind: str


@dataclass
class Free:
    seq: int
    completed: bool  # F (free completed) rather than f (free requested)
    alloc_id: int
    address: int
    stream: int


@dataclass
class Trace:
    names: dict = field(default_factory=dict)
    sites: dict = field(default_factory=dict)   # site id -> [frame text], innermost first
    allocs: list = field(default_factory=list)  # (id, address, bytes, kind), file order
    frees: list = field(default_factory=list)   # (id, address) of F lines, file order
    alloc_events: list = field(default_factory=list)  # Alloc, by seq
    free_events: list = field(default_factory=list)   # Free (f and F), by seq
    ops: list = field(default_factory=list)     # Op, by seq
    complete: bool = False
    dropped_events: int = 0  # from the x line

    def frames(self, site: int) -> list:
        """The frames of call site `site` ("module+0xoffset function"), innermost first."""
        return self.sites.get(site, [])


def frame_module(frame: str) -> str:
    """The module path of a frame "module+0xoffset function"."""
    return frame.split(" ", 1)[0].rsplit("+0x", 1)[0]


def read(path: str) -> Trace:
    t = Trace()
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    if not lines or lines[0] not in ("v 1 oversub-trace", "v 2 oversub-trace"):
        raise ValueError(f"{path}: not an oversub trace (first line {lines[:1]})")
    for line in lines[1:]:
        fields = line.split(" ")
        tag = fields[0]
        if tag == "n":
            t.names[int(fields[1], 16)] = " ".join(fields[2:])
        elif tag == "t":
            count = int(fields[2], 16)
            t.sites[int(fields[1], 16)] = [t.names.get(int(fields[3 + i], 16), "") for i in range(count)]
        elif tag == "a":
            a = Alloc(int(fields[1], 16), int(fields[4], 16), int(fields[5], 16), int(fields[6], 16),
                      int(fields[7], 16), int(fields[8], 16), fields[9])
            t.allocs.append((a.alloc_id, a.address, a.bytes, a.kind))
            t.alloc_events.append(a)
        elif tag in ("f", "F"):
            e = Free(int(fields[1], 16), tag == "F", int(fields[4], 16), int(fields[5], 16), int(fields[6], 16))
            if e.completed:
                t.frees.append((e.alloc_id, e.address))
            t.free_events.append(e)
        elif tag == "o":
            name = t.names.get(int(fields[5], 16), "")
            count = int(fields[8], 16)
            ranges = [(int(fields[9 + 3 * i], 16), int(fields[10 + 3 * i], 16), fields[11 + 3 * i]) for i in range(count)]
            t.ops.append(Op(int(fields[1], 16), fields[4], name, int(fields[6], 16), ranges))
        elif tag == "x":
            t.complete = True
            t.dropped_events = int(fields[2], 16)
    t.ops.sort(key=lambda o: o.seq)
    t.alloc_events.sort(key=lambda a: a.seq)
    t.free_events.sort(key=lambda e: e.seq)
    return t
