#!/usr/bin/env python3
"""Issue 7: scripts/bench-policies, which writes the policy section of docs/benchmarks.md, still
runs and still writes what that section promises, so the script cannot rot between the times
someone regenerates the document.

  check_bench_policies.py OVERSUB_TRACE SOURCE_ROOT

Runs the script's --quick mode (one trace, one device, two budgets) into a temporary file that
already holds a hand-written section above the marker, and checks:
  - the hand-written part is kept word for word, the generated part follows the marker;
  - the statement that every figure is a replay prediction, with the date, commit and command;
  - one table row per budget, each with every policy's cell, the lower bound, lookahead's ratio
    to it (a number at or above 1 on a row below the footprint) and the verdict against the
    baselines;
  - a second run gives the same document (the replay is deterministic).
"""
import os
import re
import subprocess
import sys
import tempfile

MARKER = "<!-- Everything below is written by scripts/bench-policies. Do not edit by hand. -->"
HAND = "# Benchmarks\n\nA hand-measured section that must survive.\n\n"


def main() -> int:
    cli, root = os.path.abspath(sys.argv[1]), sys.argv[2]
    script = os.path.join(root, "scripts", "bench-policies")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "benchmarks.md")
        with open(out, "w", encoding="utf-8") as f:
            f.write(HAND + MARKER + "\nstale generated text\n")
        texts = []
        for _ in range(2):
            subprocess.run([sys.executable, script, "--quick", "--oversub-trace", cli, "-o", out,
                            "--date", "2000-01-02"], check=True, cwd=root)
            with open(out, encoding="utf-8") as f:
                texts.append(f.read())
    text = texts[0]
    failures = []

    def expect(condition, what):
        if not condition:
            failures.append(what)

    expect(text.startswith(HAND + MARKER + "\n"), "the hand-written part and the marker come first")
    expect("stale generated text" not in text, "the old generated part is replaced")
    expect("Written by `./scripts/bench-policies --quick` on 2000-01-02, at commit `" in text,
           "the command, date and commit are stated")
    expect("prediction of the replay's cost model" in text and "no GPU ran any of it" in text,
           "the figures are said to be predictions, not measurements")
    expect("### `unet3d-b2-64.trace.gz` (footprint " in text, "a section per trace")
    expect(re.search(r"^\|(---\|){12}$", text, re.M) is not None, "the separator has 12 columns")
    header = [l for l in text.splitlines() if l.startswith("| device | budget |")]
    expect(len(header) == 1, "one table header")
    if header:
        for column in ["unlimited step ms", "lower bound ms", "lru", "vdnn", "tflms", "lookahead",
                       "lookahead-prefetch", "lookahead ÷ bound", "lookahead evicts early",
                       "lookahead beats every baseline"]:
            expect(f"| {column} |" in header[0], f"the header has a '{column}' column")
    rows = [l for l in text.splitlines() if l.startswith("| h100-sxm |")]
    expect(len(rows) == 2, f"two rows, one per budget (got {len(rows)})")
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        expect(len(cells) == 12, f"12 cells in '{row}'")
        if len(cells) != 12:
            continue
        full = cells[1].startswith("100%")
        expect(re.fullmatch(r"(100|50)% \(\d+\.\d\d GB\)", cells[1]) is not None, f"a budget in '{row}'")
        for cell in cells[4:9]:
            expect(re.fullmatch(r"\+\d+%|does not run", cell) is not None, f"an overhead '{cell}' in '{row}'")
        ratio = float(cells[9])
        expect(ratio >= 1.0 - 1e-9, f"lookahead is at or above the lower bound in '{row}'")
        expect(cells[10] in ("yes", "no", "-", "still timing"), f"an early-eviction choice in '{row}'")
        if full:
            expect(cells[10] == "-", f"nothing to choose at 100% in '{row}'")
            expect(cells[11] == "-", f"no verdict at 100% in '{row}'")
            expect(all(c == "+0%" for c in cells[4:7]), f"lru, vdnn and tflms cost nothing at 100% in '{row}'")
        else:
            expect(cells[11] in ("yes", "- (no policy runs)") or cells[11].startswith("**no**: "),
                   f"a verdict in '{row}'")
    expect(re.search(r"`lookahead` is faster than every baseline \(lru, vdnn, tflms\) in [01] of 1 rows where some policy runs", text)
           is not None, "the summary counts the rows below the footprint")
    expect(texts[0] == texts[1], "two runs write the same document")
    for failure in failures:
        print("FAIL:", failure)
    if failures:
        print(text)
        return 1
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
