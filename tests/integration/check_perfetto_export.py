#!/usr/bin/env python3
"""Issue 7 (6): `oversub-trace export --perfetto` writes trace-event JSON that a
strict JSON parser reads back, with every op of the trace on the right track
(Note [Exported timeline] in tracer/perfetto_export.h).

  check_perfetto_export.py CLI trace TRACE --layout time|sequence [--evictions]
  check_perfetto_export.py CLI odd-names WORKDIR
  check_perfetto_export.py CLI live WORKDIR SHIM PROGRAM [FLAG...]

`trace` exports TRACE (plain or .gz) and checks, against the trace as this
script reads it on its own:
  - the output is one JSON object (json.loads with no extensions: no NaN), whose
    otherData names the expected layout;
  - every X and i event is on a track named by a thread_name M event, and no
    track's tid is used by another process or equals another process's pid;
  - one X slice per op, named by the op's name (its kind when unnamed), on the
    track of its stream (other ops) or of its copy direction (copies); one per
    eviction on 'copy d2h' and per prefetch on 'copy h2d';
  - on every track, slices come in seq order with start times that never
    decrease and never overlap; in the sequence layout each lasts 1 us and
    starts at its event's index;
  - the 'live' counter's maximum is the summary's peak live bytes
    (`oversub-trace summary --json`); with --evictions the trace must have some.
`odd-names` writes a trace whose names hold quotes, backslashes, escaped
newlines, control bytes, UTF-8 and bytes that are not UTF-8, and checks that
each comes back as the same text (U+FFFD for each invalid byte).
`live` runs PROGRAM under the shim in swap mode with a budget well below its
footprint, writing a trace, then checks it as `trace ... --layout time
--evictions` does.
"""
import gzip
import json
import os
import subprocess
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from sanitizer_env import program_env  # noqa: E402  (Note [Sanitizer builds])

COPY_TRACK = {"h2d": "copy h2d", "d2h": "copy d2h", "d2d": "copy d2d", "h2h": "copy h2h", "default": "copy default"}


def fail(message):
    print(f"check_perfetto_export: {message}", file=sys.stderr)
    sys.exit(1)


def unescape(text: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(text):
        if text[i:i + 1] == b"\\":
            out += {b"\\": b"\\", b"n": b"\n", b"r": b"\r"}[text[i + 1:i + 2]]
            i += 2
        else:
            out += text[i:i + 1]
            i += 1
    return bytes(out)


def read_events(path):
    """The trace's events as (seq, tag, fields), sorted by seq, and its names (bytes)."""
    raw = open(path, "rb").read()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    names = {0: b""}
    events = []
    for line in raw.split(b"\n")[1:]:
        tag = line[:1]
        if tag == b"n":
            _, ident, text = line.split(b" ", 2)
            names[int(ident, 16)] = unescape(text)
        elif tag in (b"a", b"f", b"F", b"o", b"s", b"e", b"p"):
            fields = line.decode("ascii").split(" ")
            events.append((int(fields[1], 16), fields[0], fields))
    events.sort(key=lambda e: e[0])
    return events, names


def shown(name: bytes) -> str:
    """A trace name as the JSON must show it: UTF-8, U+FFFD for each invalid byte."""
    out = []
    i = 0
    while i < len(name):
        for length in (1, 2, 3, 4):
            try:
                out.append(name[i:i + length].decode("utf-8"))
                i += length
                break
            except UnicodeDecodeError:
                continue
        else:
            out.append("\ufffd")
            i += 1
    return "".join(out)


def export(cli, trace, output, extra=()):
    run = subprocess.run([cli, "export", "--perfetto", trace, "-o", output, *extra], capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"export of {trace} exited {run.returncode}: {run.stderr.strip()}")
    with open(output, encoding="utf-8") as f:
        text = f.read()

    def no_constants(name):
        fail(f"{output}: JSON constant {name} is not valid JSON")

    return json.loads(text, parse_constant=no_constants)


def expected_slices(events, names):
    """(track name, slice name, seq) for each op, eviction and prefetch, in seq order."""
    out = []
    for seq, tag, fields in events:
        if tag == "o":
            kind, name, stream, direction = fields[4], names[int(fields[5], 16)], int(fields[6], 16), fields[7]
            if kind == "copy":
                out.append((COPY_TRACK[direction], shown(name) or f"copy {direction}", seq))
            else:
                track = "stream 0 (default)" if stream == 0 else f"stream {stream:#x}"
                out.append((track, shown(name) or kind, seq))
        elif tag in ("e", "p"):
            what, track = ("evict", "copy d2h") if tag == "e" else ("prefetch", "copy h2d")
            reason = shown(names[int(fields[7], 16)])
            out.append((track, f"{what} ({reason})" if reason else what, seq))
    return out


def check_trace(cli, trace, layout, want_evictions, output):
    document = export(cli, trace, output)
    if document.get("otherData", {}).get("layout") != layout:
        fail(f"{trace}: otherData.layout is {document.get('otherData', {}).get('layout')!r}, expected {layout!r}")
    events, names = read_events(trace)
    trace_events = document["traceEvents"]
    track_names = {}
    for e in trace_events:
        if e["ph"] == "M" and e["name"] == "thread_name":
            track_names[(e["pid"], e["tid"])] = e["args"]["name"]
    # Perfetto keys threads by tid alone: a tid in two processes, or equal to another
    # process's pid, would merge tracks (Note [Trace event JSON]).
    pids = {e["pid"] for e in trace_events}
    owner = {}
    for pid, tid in track_names:
        if owner.setdefault(tid, pid) != pid or (tid in pids and tid != pid):
            fail(f"{trace}: tid {tid} is used by pid {pid} and by pid {owner[tid] if owner[tid] != pid else tid}")
    slices = [e for e in trace_events if e["ph"] == "X"]
    for e in slices + [e for e in trace_events if e["ph"] == "i"]:
        if (e["pid"], e["tid"]) not in track_names:
            fail(f"{trace}: event {e} is on an unnamed track")

    # One slice per op, eviction and prefetch, each on its track, named as in the trace.
    got = sorted((track_names[(e["pid"], e["tid"])], e["name"], e["args"]["seq"]) for e in slices)
    want = sorted(expected_slices(events, names))
    if got != want:
        missing = sorted(set(want) - set(got))[:5]
        extra = sorted(set(got) - set(want))[:5]
        fail(f"{trace}: {len(got)} slices, expected {len(want)}; missing {missing}, unexpected {extra}")
    ops = sum(1 for _, tag, _ in events if tag == "o")
    moves = sum(1 for _, tag, _ in events if tag in ("e", "p"))
    if want_evictions and moves == 0:
        fail(f"{trace}: no evictions or prefetches in the trace; the test needs some")

    # Per track: seq order, start times never decreasing, no overlap.
    by_track = defaultdict(list)
    for e in slices:
        by_track[(e["pid"], e["tid"])].append(e)
    index_of_seq = {seq: i for i, (seq, _, _) in enumerate(events)}
    for track, track_slices in by_track.items():
        seqs = [e["args"]["seq"] for e in track_slices]
        if seqs != sorted(seqs):
            fail(f"{trace}: slices of track {track_names[track]!r} are not in seq order")
        for before, after in zip(track_slices, track_slices[1:]):
            if after["ts"] < before["ts"] or before["ts"] + before["dur"] > after["ts"] + 1e-6:
                fail(f"{trace}: on track {track_names[track]!r}, {before} overlaps or follows {after}")
        if layout == "sequence":
            for e in track_slices:
                if e["dur"] != 1 or e["ts"] != index_of_seq[e["args"]["seq"]]:
                    fail(f"{trace}: sequence layout: {e} should start at its event index and last 1 us")

    # The live counter agrees with the summary's peak.
    summary = json.loads(subprocess.run([cli, "summary", "--json", trace], capture_output=True, text=True,
                                        check=True).stdout)
    live = [e["args"]["bytes"] for e in trace_events if e["ph"] == "C" and e["name"] == "live"]
    if max(live, default=0) != summary["peak_live_bytes"]:
        fail(f"{trace}: largest 'live' counter value {max(live, default=0)} != peak_live_bytes "
             f"{summary['peak_live_bytes']}")
    print(f"{trace}: {ops} ops and {moves} evictions/prefetches on {len(by_track)} tracks, "
          f"{len(live)} live samples, layout {layout}: ok")


def odd_names(cli, workdir):
    odd = [b'say "hi"', b"back\\\\slash", b"new\\nline\\rreturn", b"tab\there", b"bell\x07 esc\x1b del\x7f",
           b"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", b"bad \xff\xfe byte", b"cut \xe2\x82", b"overlong \xc0\xaf",
           b"surrogate \xed\xa0\x80", b"</script>{}[],:"]
    lines = [b"v 2 oversub-trace"]
    for i, name in enumerate(odd, 1):
        lines.append(b"n %x %s" % (i, name))
    for i in range(len(odd)):
        seq = i + 1
        lines.append(b"o %x %x 1 kernel %x 0 - 0" % (seq, 1000 * seq, i + 1))
    lines.append(b"x %x 0" % (1000 * (len(odd) + 1)))
    trace = os.path.join(workdir, "odd-names.trace")
    with open(trace, "wb") as f:
        f.write(b"\n".join(lines) + b"\n")
    document = export(cli, trace, os.path.join(workdir, "odd-names.json"))
    got = [e["name"] for e in document["traceEvents"] if e["ph"] == "X"]
    want = [shown(unescape(name)) for name in odd]
    if got != want:
        fail(f"odd names: got {got!r}, expected {want!r}")
    check_trace(cli, trace, "time", False, os.path.join(workdir, "odd-names-2.json"))
    print(f"{len(odd)} odd names round-trip: ok")


def live(cli, workdir, shim, program, flags):
    trace = os.path.join(workdir, "live-swap.trace")
    env = program_env(dict(os.environ, LD_PRELOAD=shim, OVERSUB_MODE="swap", OVERSUB_DEVICE_BUDGET="64MiB",
                           OVERSUB_TRACE=trace))
    run = subprocess.run([program, *flags], env=env, capture_output=True, text=True)
    if run.returncode != 0:
        fail(f"{program} under the shim exited {run.returncode}: {run.stderr[-2000:]}")
    check_trace(cli, trace, "time", True, os.path.join(workdir, "live-swap.json"))


def main():
    cli, mode = sys.argv[1], sys.argv[2]
    if mode == "trace":
        trace, layout = sys.argv[3], sys.argv[5]
        output = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"perfetto-{os.getpid()}.json")
        try:
            check_trace(cli, trace, layout, "--evictions" in sys.argv, output)
        finally:
            if os.path.exists(output):
                os.remove(output)
    elif mode == "odd-names":
        os.makedirs(sys.argv[3], exist_ok=True)
        odd_names(cli, sys.argv[3])
    elif mode == "live":
        os.makedirs(sys.argv[3], exist_ok=True)
        live(cli, sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
    else:
        fail(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
