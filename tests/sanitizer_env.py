"""The environment for a program that runs on the simulated GPU, in any build.

In a sanitizer build (Note [Sanitizer builds] in meson.build) liboversub.so and
the simulated libraries are instrumented but the nvcc-built programs are not,
so the sanitizer runtime has to be the first library ld.so loads. The test
setup names it in SANITIZER_RUNTIME; `program_env` puts it at the head of
LD_PRELOAD. In an ordinary build SANITIZER_RUNTIME is unset and the
environment is returned as it was given.

The checkers import this module from the tests/ directory:

    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "<up to tests/>"))
"""
import os
import re


def program_env(env):
    """A copy of env whose LD_PRELOAD starts with the sanitizer runtime, if this is a sanitizer build."""
    env = dict(env)
    runtime = os.environ.get("SANITIZER_RUNTIME", "")
    if runtime:
        # ld.so splits LD_PRELOAD at spaces and colons.
        rest = [p for p in re.split(r"[: ]", env.get("LD_PRELOAD", "")) if p and p != runtime]
        env["LD_PRELOAD"] = ":".join([runtime] + rest)
    return env
