"""Tests of the launcher, scripts/oversub (suite 'launcher').

    python3 test_launcher.py [TestClass...]

The launcher under test and the things it works with come from the environment
that tests/launcher/meson.build sets:
  LAUNCHER          the launcher to run (the source copy or the configured build copy)
  LAUNCHER_LIBRARY  the liboversub.so it must find by itself
  LAUNCHER_LIBDIR   get_option('libdir'), for the installed-layout test
  LAUNCHER_VERSION  meson.project_version()
  SIMULATED_GPU_DIR build/tests/simcuda (the simulated GPU; not SIMCUDA_*, a
                    prefix the simulator keeps for its own settings)
  STREAM_SAMPLE     an nvcc-built CUDA program

Commands run by the launcher are small Python one-liners that report the
environment they received, so these tests check what the child gets, not what
the shim does with it (Note [Settings the shim does not know yet] in the launcher).
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

LAUNCHER = os.path.abspath(os.environ["LAUNCHER"])
LIBRARY = os.path.realpath(os.environ["LAUNCHER_LIBRARY"])
LIBDIR = os.environ.get("LAUNCHER_LIBDIR", "lib")
VERSION = os.environ.get("LAUNCHER_VERSION", "")
SIMULATED_GPU_DIR = os.environ.get("SIMULATED_GPU_DIR", "")
STREAM_SAMPLE = os.environ.get("STREAM_SAMPLE", "")

PRINT_ENV = [sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"]


def clean_environment(**extra):
    """The test's environment without anything that would change the launcher's behaviour."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("OVERSUB_") and k not in (
               "LD_PRELOAD", "LD_LIBRARY_PATH", "PYTORCH_NO_CUDA_MEMORY_CACHING", "TF_GPU_ALLOCATOR")}
    env.update(extra)
    return env


def launch(args, env=None, **kwargs):
    return subprocess.run([sys.executable, LAUNCHER] + args, capture_output=True, text=True,
                          env=clean_environment() if env is None else env, timeout=60, **kwargs)


def child_env(run_args, env=None, cwd=None):
    """Runs PRINT_ENV under `oversub run run_args --` and returns the child's environment."""
    r = launch(["run"] + run_args + ["--"] + PRINT_ENV, env=env, cwd=cwd)
    if r.returncode != 0:
        raise AssertionError(f"launcher failed ({r.returncode}): {r.stderr}")
    return json.loads(r.stdout.splitlines()[-1])


class FlagsToEnvironment(unittest.TestCase):
    # The child is preloaded, so the settings must agree with each other: the
    # swap-only ones and --mode passthrough go in separate runs (docs/configuration.md).
    def test_each_flag_sets_its_variable(self):
        with tempfile.TemporaryDirectory() as d:
            env = child_env(["--budget", "75%", "--host-limit", "64GiB", "--policy", "lru",
                             "--trace", "run.trace", "--stats", "run.json", "--strict",
                             "--mode", "swap", "--log", "debug"], cwd=d)
            passthrough = child_env(["--mode", "passthrough"], cwd=d)
        self.assertEqual(env["OVERSUB_DEVICE_BUDGET"], "75%")
        self.assertEqual(env["OVERSUB_HOST_LIMIT"], "64GiB")
        self.assertEqual(env["OVERSUB_POLICY"], "lru")
        # Paths are made absolute: a child that changes directory writes the same file.
        self.assertEqual(env["OVERSUB_TRACE"], os.path.join(os.path.realpath(d), "run.trace"))
        self.assertEqual(env["OVERSUB_STATS"], os.path.join(os.path.realpath(d), "run.json"))
        self.assertEqual(env["OVERSUB_STRICT"], "1")
        self.assertEqual(env["OVERSUB_MODE"], "swap")
        self.assertEqual(env["OVERSUB_LOG"], "debug")
        self.assertEqual(passthrough["OVERSUB_MODE"], "passthrough")

    def test_equals_form(self):
        env = child_env(["--budget=20GiB", "--policy=lru"])
        self.assertEqual(env["OVERSUB_DEVICE_BUDGET"], "20GiB")
        self.assertEqual(env["OVERSUB_POLICY"], "lru")

    def test_shim_rejects_what_the_launcher_passes_on(self):
        # The launcher leaves names and combinations to the shim, which stops the
        # child when it loads: one line, status 2, and the child never runs.
        for args, line in [
                (["--policy=belady"], "oversub: invalid OVERSUB_POLICY='belady': expected lookahead or lru"),
                (["--mode", "passthrough", "--strict"],
                 "oversub: OVERSUB_STRICT='1' conflicts with OVERSUB_MODE='passthrough'")]:
            with self.subTest(args=args):
                r = launch(["run"] + args + ["--log", "quiet", "--"] + PRINT_ENV)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertEqual(r.stdout, "")
                self.assertEqual(len(r.stderr.splitlines()), 1, r.stderr)
                self.assertTrue(r.stderr.startswith(line), r.stderr)

    def test_no_flags_set_no_oversub_variables(self):
        env = child_env([])
        self.assertEqual(sorted(k for k in env if k.startswith("OVERSUB_")), [])

    def test_command_without_double_dash(self):
        r = launch(["run", "--strict"] + PRINT_ENV)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(json.loads(r.stdout)["OVERSUB_STRICT"], "1")

    def test_accepted_sizes(self):
        for budget in ["4MiB", "4194304", "512MiB", "1.5GiB", "2TB", "0.5%", "62.5%", "90%", "100%"]:
            with self.subTest(budget=budget):
                self.assertEqual(child_env(["--budget", budget])["OVERSUB_DEVICE_BUDGET"], budget)


class FrameworkDefaults(unittest.TestCase):
    def test_applied_when_absent(self):
        env = child_env([])
        self.assertEqual(env["PYTORCH_NO_CUDA_MEMORY_CACHING"], "1")
        self.assertEqual(env["TF_GPU_ALLOCATOR"], "cuda_malloc_async")

    def test_user_values_kept(self):
        env = child_env([], env=clean_environment(PYTORCH_NO_CUDA_MEMORY_CACHING="0", TF_GPU_ALLOCATOR="bfc"))
        self.assertEqual(env["PYTORCH_NO_CUDA_MEMORY_CACHING"], "0")
        self.assertEqual(env["TF_GPU_ALLOCATOR"], "bfc")

    def test_opt_out(self):
        env = child_env(["--no-framework-defaults"])
        self.assertNotIn("PYTORCH_NO_CUDA_MEMORY_CACHING", env)
        self.assertNotIn("TF_GPU_ALLOCATOR", env)


class Preload(unittest.TestCase):
    def test_library_preloaded(self):
        self.assertEqual(os.path.realpath(child_env([])["LD_PRELOAD"]), LIBRARY)

    def test_prepended_to_existing_preload_without_duplicates(self):
        env = child_env([], env=clean_environment(LD_PRELOAD=f"/opt/other.so {LIBRARY}"))
        parts = env["LD_PRELOAD"].split(":")
        self.assertEqual([os.path.realpath(parts[0]), parts[-1]], [LIBRARY, "/opt/other.so"])
        self.assertEqual(len(parts), 2)

    def test_grandchild_inherits_preload(self):
        # CMD starts a shell that starts another process: the way torchrun starts workers.
        script = ("import subprocess; subprocess.run(['sh', '-c', "
                  "'exec sh -c \"echo grandchild LD_PRELOAD=$LD_PRELOAD OVERSUB_POLICY=$OVERSUB_POLICY\"'])")
        r = launch(["run", "--policy", "lru", "--", sys.executable, "-c", script])
        self.assertEqual(r.returncode, 0, r.stderr)
        line = [l for l in r.stdout.splitlines() if l.startswith("grandchild ")][0]
        preload = line.split("LD_PRELOAD=")[1].split()[0]
        self.assertEqual(os.path.realpath(preload), LIBRARY)
        self.assertIn("OVERSUB_POLICY=lru", line)

    def test_explicit_library(self):
        with tempfile.TemporaryDirectory() as d:
            copy = os.path.join(d, "liboversub.so")
            shutil.copy(LIBRARY, copy)
            env = child_env(["--library", copy])
            self.assertEqual(env["LD_PRELOAD"], copy)

    def test_missing_library_is_an_error(self):
        r = launch(["run", "--library", "/nonexistent/liboversub.so", "--", "true"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("liboversub.so not found", r.stderr)


class InstalledLayout(unittest.TestCase):
    """The configured copy finds <prefix>/<libdir>/liboversub.so relative to its
    own bindir, as after `meson install` (Note [Launcher paths])."""

    def test_finds_library_under_prefix(self):
        with open(LAUNCHER, encoding="utf-8") as f:
            if '"@OVERSUB_LIBDIR@"' in f.read():
                self.skipTest("the source copy has no install layout baked in")
        with tempfile.TemporaryDirectory() as prefix:
            os.makedirs(os.path.join(prefix, "bin"))
            os.makedirs(os.path.join(prefix, LIBDIR))
            launcher = os.path.join(prefix, "bin", "oversub")
            shutil.copy(LAUNCHER, launcher)
            library = os.path.join(prefix, LIBDIR, "liboversub.so")
            shutil.copy(LIBRARY, library)
            r = subprocess.run([sys.executable, launcher, "run", "--"] + PRINT_ENV, capture_output=True,
                               text=True, env=clean_environment(), timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(json.loads(r.stdout)["LD_PRELOAD"], library)


class ExitStatus(unittest.TestCase):
    def test_child_status_propagates(self):
        for status in [0, 1, 3, 255]:
            with self.subTest(status=status):
                r = launch(["run", "--", sys.executable, "-c", f"raise SystemExit({status})"])
                self.assertEqual(r.returncode, status)

    def test_signal_becomes_128_plus_signal(self):
        for sig in [signal.SIGTERM, signal.SIGKILL, signal.SIGSEGV]:
            with self.subTest(signal=sig.name):
                r = launch(["run", "--", sys.executable, "-c",
                            f"import os; os.kill(os.getpid(), {int(sig)})"])
                self.assertEqual(r.returncode, 128 + int(sig))
                self.assertIn(sig.name, r.stderr)

    def test_command_not_found(self):
        r = launch(["run", "--", "/nonexistent/program"])
        self.assertEqual(r.returncode, 127)
        self.assertIn("command not found", r.stderr)

    def start_and_wait(self, child_code):
        """Starts the launcher on a Python child and returns once the child runs
        (the launcher installs its signal handlers before it starts the child)."""
        proc = subprocess.Popen([sys.executable, LAUNCHER, "run", "--", sys.executable, "-u", "-c", child_code],
                                env=clean_environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(proc.stdout.readline(), "started\n")
        return proc

    def test_sigterm_to_launcher_reaches_child(self):
        proc = self.start_and_wait("import time; print('started'); time.sleep(30)")
        start = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
        # Forwarded: the child died of SIGTERM and the launcher reported it.
        # Not forwarded: the launcher itself dies of SIGTERM (returncode -15).
        self.assertEqual(proc.returncode, 128 + signal.SIGTERM)
        self.assertIn("SIGTERM", stderr)
        self.assertLess(time.monotonic() - start, 10)

    def test_sigint_to_launcher_alone_does_not_stop_the_child(self):
        proc = self.start_and_wait("import time; print('started'); time.sleep(1); print('finished')")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        self.assertEqual(proc.returncode, 0, err)
        self.assertIn("finished", out)


class UsageErrors(unittest.TestCase):
    def check_usage_error(self, args, words):
        r = launch(args)
        self.assertEqual(r.returncode, 2, f"{args}: {r.stderr}")
        self.assertIn("usage: oversub", r.stderr)
        self.assertIn(words, r.stderr)
        self.assertEqual(r.stdout, "")

    def test_errors(self):
        cases = [
            ([], "no command given"),
            (["frobnicate"], "unknown command"),
            (["run"], "no command to run"),
            (["run", "--"], "no command to run"),
            (["run", "--frobnicate", "--", "true"], "unknown option --frobnicate"),
            (["run", "--budget", "lots", "--", "true"], "invalid --budget 'lots'"),
            (["run", "--budget", "0%", "--", "true"], "invalid --budget '0%'"),
            (["run", "--budget", "101%", "--", "true"], "invalid --budget '101%'"),
            (["run", "--budget", "12XB", "--", "true"], "invalid --budget '12XB'"),
            (["run", "--budget", "0", "--", "true"], "invalid --budget '0'"),
            (["run", "--budget", "-5GiB", "--", "true"], "invalid --budget '-5GiB'"),
            (["run", "--budget", "1.5", "--", "true"], "invalid --budget '1.5'"),
            (["run", "--budget", "100B", "--", "true"], "invalid --budget '100B'"),
            (["run", "--host-limit", "2MiB", "--", "true"], "invalid --host-limit '2MiB'"),
            (["run", "--host-limit", "50%", "--", "true"], "invalid --host-limit '50%'"),
            (["run", "--policy", "", "--", "true"], "invalid --policy"),
            (["run", "--strict=yes", "--", "true"], "--strict takes no value"),
            (["run", "--budget"], "--budget needs a value"),
            (["doctor", "--frobnicate"], "unknown argument"),
        ]
        for args, words in cases:
            with self.subTest(args=args):
                self.check_usage_error(args, words)


class VersionAndHelp(unittest.TestCase):
    def test_version_matches_meson_project(self):
        r = launch(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stdout.strip(), f"oversub {VERSION}")

    def test_help_lists_commands_and_every_flag(self):
        r = launch(["--help"])
        self.assertEqual(r.returncode, 0)
        for word in ["run", "doctor", "demo", "--version"]:
            self.assertIn(word, r.stdout)
        r = launch(["run", "--help"])
        self.assertEqual(r.returncode, 0)
        for flag, variable in [("--budget", "OVERSUB_DEVICE_BUDGET"), ("--host-limit", "OVERSUB_HOST_LIMIT"),
                               ("--policy", "OVERSUB_POLICY"), ("--trace", "OVERSUB_TRACE"),
                               ("--stats", "OVERSUB_STATS"), ("--strict", "OVERSUB_STRICT"),
                               ("--mode", "OVERSUB_MODE"), ("--log", "OVERSUB_LOG")]:
            self.assertIn(f"{flag}", r.stdout)
            self.assertIn(variable, r.stdout)

    def test_demo_rejects_arguments(self):
        # The demo itself trains for a minute; the 'demo' test suite runs it.
        r = launch(["demo", "--fast"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage: oversub demo", r.stderr)


DOCTOR_CHECKS = ["NVIDIA driver", "CUDA toolkit", "GPU", "VMM (attribute 102)", "host VMM (attribute 145)",
                 "locked-memory limit", "host memory", "liboversub.so", "oversub-trace"]


def doctor(env):
    r = launch(["doctor"], env=env)
    lines = r.stdout.splitlines()
    checks = {}
    for line in lines:
        status, _, rest = line.partition(" ")
        name, _, detail = rest.strip().partition(": ")
        checks[name] = (status, detail)
    return r, lines, checks


class Doctor(unittest.TestCase):
    def test_one_line_per_check(self):
        r, lines, checks = doctor(clean_environment())
        self.assertEqual(len(lines), len(DOCTOR_CHECKS), r.stdout)
        self.assertEqual(list(checks), DOCTOR_CHECKS)
        for name, (status, detail) in checks.items():
            self.assertIn(status, ("OK", "WARN", "MISSING"), name)
            self.assertTrue(detail, name)
        missing = any(status == "MISSING" for status, _ in checks.values())
        self.assertEqual(r.returncode, 1 if missing else 0)

    def test_finds_liboversub(self):
        _, _, checks = doctor(clean_environment())
        status, detail = checks["liboversub.so"]
        self.assertEqual(status, "OK")
        self.assertEqual(os.path.realpath(detail), LIBRARY)

    def test_reports_missing_library(self):
        r = launch(["doctor", "--library", "/nonexistent/liboversub.so"])
        self.assertIn("MISSING  liboversub.so: not found", r.stdout)
        self.assertEqual(r.returncode, 1)

    def test_memory_checks_report_numbers(self):
        _, _, checks = doctor(clean_environment())
        self.assertRegex(checks["host memory"][1], r"\d.* available of \d")
        self.assertRegex(checks["locked-memory limit"][1], r"unlimited|\d")

    def test_simulated_gpu_through_ctypes(self):
        if not SIMULATED_GPU_DIR:
            self.skipTest("SIMULATED_GPU_DIR not set")
        _, _, checks = doctor(clean_environment(LD_LIBRARY_PATH=SIMULATED_GPU_DIR))
        status, detail = checks["GPU"]
        self.assertEqual(status, "OK")
        self.assertIn("simcuda H100 (simulated)", detail)
        self.assertIn(os.path.join(SIMULATED_GPU_DIR, "libcuda.so.1"), detail)
        self.assertRegex(detail, r"\d+\.\d GiB")  # cuDeviceTotalMem_v2
        self.assertEqual(checks["VMM (attribute 102)"], ("OK", "supported"))
        self.assertEqual(checks["host VMM (attribute 145)"], ("OK", "supported"))

    def test_simulated_gpu_memory_follows_simcuda_memory(self):
        if not SIMULATED_GPU_DIR:
            self.skipTest("SIMULATED_GPU_DIR not set")
        _, _, checks = doctor(clean_environment(LD_LIBRARY_PATH=SIMULATED_GPU_DIR, SIMCUDA_MEMORY="3GiB"))
        self.assertIn("3.0 GiB", checks["GPU"][1])


class Summary(unittest.TestCase):
    def test_status_and_time(self):
        r = launch(["run", "--", sys.executable, "-c", "raise SystemExit(4)"])
        self.assertRegex(r.stderr, r"oversub: python\S* exited with status 4 after \d+\.\d\d s")

    def test_stats_line_from_json(self):
        with tempfile.TemporaryDirectory() as d:
            stats = os.path.join(d, "stats.json")
            writer = ("import json, os; json.dump({'evictions': 12, 'peak_device_bytes': 3 << 30, "
                      "'host_wait_ns': 2500000, 'policy': 'lru', 'strict': False, 'per_op': [1, 2]}, "
                      "open(os.environ['OVERSUB_STATS'], 'w'))")
            r = launch(["run", "--stats", stats, "--", sys.executable, "-c", writer])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("oversub: stats: evictions=12 peak_device_bytes=3.0 GiB host_wait_ms=2.5 policy=lru strict=false\n",
                      r.stderr)

    def test_trace_named_in_the_environment(self):
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "user.trace")
            writer = "import os; open(os.environ['OVERSUB_TRACE'], 'w').write('v 1 oversub-trace\\n')"
            r = launch(["run", "--", sys.executable, "-c", writer], env=clean_environment(OVERSUB_TRACE=trace))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn(f"; trace {trace} (18 B)", r.stderr)

    def test_missing_stats_said_honestly(self):
        r = launch(["run", "--stats", "/nonexistent/dir/stats.json", "--", "true"])
        self.assertIn("no statistics in /nonexistent/dir/stats.json", r.stderr)

    def test_quiet(self):
        r = launch(["run", "--log", "quiet", "--", "true"])
        self.assertEqual(r.returncode, 0)
        self.assertEqual(r.stderr, "")


class SizeGrammarAgreesWithShim(unittest.TestCase):
    """The launcher rejects a size before the job starts exactly when the shim
    would reject it as it loads into the job (Note [Size grammar]). Whether a
    budget fits the device is a later check of the shim's, when swap mode
    starts, and not part of the grammar."""

    VALUES = ["1", "4096", "4MiB", "4194303", "4194304", "3.9MiB", "512MiB", "1.5GiB", "2TB", "100B", "8KB",
              "0.5%", "62.5%", "100%", "lots", "0", "0%", "101%", "-5GiB", "+5GiB", "1.5", "1.5B", "12XB",
              "5 GiB", "5gib", "%", "", "1e3", "0x10", " 5", "1e2%", ".5GiB"]

    def shim_accepts(self, variable, value):
        # A preloaded program that does no CUDA work: only the load-time check runs.
        env = clean_environment(LD_PRELOAD=LIBRARY, OVERSUB_LOG="quiet")
        env[variable] = value
        r = subprocess.run([sys.executable, "-c", "print('ran')"], capture_output=True, text=True, env=env,
                           timeout=60)
        rejected = r.returncode == 2 and f"invalid {variable}=" in r.stderr
        self.assertTrue(rejected or (r.returncode == 0 and r.stdout == "ran\n"), r.stderr)
        return not rejected

    def launcher_accepts(self, flag, value):
        # A command that cannot start: the launcher's own verdict, not the shim's
        # in a preloaded child (status 127 when the launcher accepts).
        r = launch(["run", flag, value, "--", "/nonexistent/program"])
        return r.returncode != 2

    def test_budget_and_host_limit(self):
        for flag, variable in [("--budget", "OVERSUB_DEVICE_BUDGET"), ("--host-limit", "OVERSUB_HOST_LIMIT")]:
            for value in self.VALUES:
                with self.subTest(flag=flag, value=value):
                    self.assertEqual(self.launcher_accepts(flag, value), self.shim_accepts(variable, value))


class SimulatedGpu(unittest.TestCase):
    def test_stream_sample_under_the_shim_writes_a_trace(self):
        if not (SIMULATED_GPU_DIR and STREAM_SAMPLE):
            self.skipTest("SIMULATED_GPU_DIR or STREAM_SAMPLE not set")
        with tempfile.TemporaryDirectory() as d:
            trace = os.path.join(d, "stream_sample.trace")
            r = launch(["run", "--trace", trace, "--", STREAM_SAMPLE],
                       env=clean_environment(LD_LIBRARY_PATH=SIMULATED_GPU_DIR))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("checksum", r.stdout)
            with open(trace, encoding="utf-8") as f:
                lines = f.read().splitlines()
            self.assertEqual(lines[0], "v 2 oversub-trace")
            self.assertIn("x", [l.split(" ")[0] for l in lines])   # complete: the program exited cleanly
            self.assertTrue(any(l.startswith("a ") for l in lines), "no allocation recorded")
            self.assertIn(f"trace {trace} (", r.stderr)

    def test_stats_from_the_engine(self):
        if not (SIMULATED_GPU_DIR and STREAM_SAMPLE):
            self.skipTest("SIMULATED_GPU_DIR or STREAM_SAMPLE not set")
        with tempfile.TemporaryDirectory() as d:
            stats = os.path.join(d, "stats.json")
            r = launch(["run", "--budget", "64MiB", "--stats", stats, "--", STREAM_SAMPLE],
                       env=clean_environment(LD_LIBRARY_PATH=SIMULATED_GPU_DIR))
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(stats, encoding="utf-8") as f:
                self.assertEqual(json.load(f)["budget_bytes"], 64 << 20)
        line = [l for l in r.stderr.splitlines() if l.startswith("oversub: stats: ")]
        self.assertEqual(len(line), 1, r.stderr)
        self.assertIn("budget_bytes=64.0 MiB", line[0])
        self.assertRegex(line[0], r" ops=[1-9]\d*( |$)")


if __name__ == "__main__":
    unittest.main(verbosity=2)
