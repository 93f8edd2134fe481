#!/usr/bin/env python3
"""Each library the sanitizer setups claim to check is built with the sanitizer.

  check_instrumented.py SYMBOL LIBRARY...

An instrumented object calls into the runtime (SYMBOL, e.g. __asan_init or
__tsan_func_entry), so the symbol is among its undefined dynamic symbols.
"""
import subprocess
import sys


def main() -> int:
    symbol, libraries = sys.argv[1], sys.argv[2:]
    missing = []
    for library in libraries:
        names = subprocess.run(["nm", "-D", "--undefined-only", library], check=True,
                               capture_output=True, text=True).stdout.split()
        if symbol not in names:
            missing.append(library)
        print(f"{library}: {'instrumented' if library not in missing else 'NOT instrumented'}")
    for library in missing:
        print(f"check_instrumented: {library} does not call {symbol}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
