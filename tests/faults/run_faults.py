#!/usr/bin/python3
"""run_faults.py - runs the fault suite (issue 3, "Nothing lost, nothing twice").

  tests/faults/run_faults.py --build build [--repeat N] [-k SUBSTRING] [-v]

Every test_* function of every tests/faults/test_*.py module is one case; the whole suite
runs N times in a row (--repeat, default 1; case names get " #round" when N > 1). A case is
`def test_x(env)` with a fresh harness.Env (tests/e2e/harness.py) that is closed afterwards;
harness.Skip skips it, any other exception fails it. Prints "PASS name" / "FAIL name" (with
the reason and process output tails) / "SKIP name (why)" per case and, last, exactly one
line "N passed, N failed, N skipped". Exit status 1 when anything failed.
Environment: CINEMON_FAULT_SEED fixes the random kill moments and injected errors;
CINEMON_KEEP=1 keeps each case's folder.
"""

import argparse
import importlib.util
import inspect
import os
import signal
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import harness  # noqa: E402

CASE_TIMEOUT_S = 240
ASAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}


class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout(f"case took longer than {CASE_TIMEOUT_S}s")


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _indent(text, limit=120):
    lines = text.rstrip().splitlines()
    if len(lines) > limit:
        lines = lines[:20] + [f"... ({len(lines) - limit} lines cut) ..."] + lines[-(limit - 20):]
    return "\n".join("    " + ln for ln in lines)


def load_cases(kfilter):
    mods = []
    for path in sorted(HERE.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"cinemon_faults_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except Exception:  # noqa: BLE001
            mods.append((path.stem, None, traceback.format_exc()))
            continue
        cases = sorted(((n, f) for n, f in vars(mod).items()
                        if n.startswith("test_") and inspect.isfunction(f)
                        and f.__module__ == mod.__name__),
                       key=lambda nf: nf[1].__code__.co_firstlineno)
        cases = [(n, f) for n, f in cases
                 if kfilter is None or kfilter in f"faults/{path.stem}/{n}"]
        if cases:
            mods.append((path.stem, cases, None))
    return mods


class Results:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures = []

    def report(self, status, name, detail=None, secs=None):
        t = f" ({secs:.1f}s)" if secs is not None else ""
        if status == "PASS":
            self.passed += 1
            print(f"PASS {name}{t}", flush=True)
        elif status == "SKIP":
            self.skipped += 1
            print(f"SKIP {name} ({detail or 'skipped'})", flush=True)
        else:
            self.failed += 1
            self.failures.append(name)
            print(f"FAIL {name}{t}", flush=True)
            if detail:
                print(_indent(detail), flush=True)


def run_case(name, fn, res, verbose):
    env = harness.Env(name.split("/")[-1].split(" ")[0])
    status, detail = "PASS", None
    t0 = time.monotonic()
    signal.alarm(CASE_TIMEOUT_S)
    try:
        fn(env) if inspect.signature(fn).parameters else fn()
    except harness.Skip as e:
        status, detail = "SKIP", str(e) or "skipped"
    except KeyboardInterrupt:
        signal.alarm(0)
        env.close()
        raise
    except BaseException:  # noqa: BLE001 - a case never stops the run
        status = "FAIL"
        detail = traceback.format_exc()
        logs = env.logs(15)
        if logs:
            detail += "\nprocess output (tails):\n" + logs
        if env.keep:
            detail += f"\nkept: {env.dir}"
    finally:
        signal.alarm(0)
    try:
        problems = env.close()
    except Exception:  # noqa: BLE001
        problems = ["closing the case failed:\n" + traceback.format_exc()]
    if problems and status != "FAIL":
        status, detail = "FAIL", "\n".join(problems)
    res.report(status, name, detail, time.monotonic() - t0 if verbose else None)


def main():
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    ap = argparse.ArgumentParser(description="run cinemon's fault suite")
    ap.add_argument("--build", default="build", help="build folder (default build)")
    ap.add_argument("--repeat", type=int, default=1, help="run the suite N times in a row")
    ap.add_argument("-k", dest="kfilter", help="run only cases whose name contains this")
    ap.add_argument("-v", dest="verbose", action="store_true", help="print each case's time")
    args = ap.parse_args()
    os.chdir(REPO)
    build = Path(args.build).resolve()
    asan = build.name.endswith("asan")
    if asan:
        os.environ.update(ASAN_ENV)
    harness.configure(build, asan)
    if args.verbose:
        os.environ["CINEMON_FAULT_VERBOSE"] = "1"
    signal.signal(signal.SIGALRM, _alarm)
    res = Results()
    t0 = time.monotonic()
    try:
        mods = load_cases(args.kfilter)
        for rnd in range(1, max(1, args.repeat) + 1):
            suffix = f" #{rnd}" if args.repeat > 1 else ""
            for stem, cases, err in mods:
                if cases is None:
                    res.report("FAIL", f"faults/{stem}{suffix}", "cannot import:\n" + err)
                    continue
                harness.begin_module(f"faults-{stem}")
                try:
                    for n, f in cases:
                        run_case(f"faults/{stem}/{n}{suffix}", f, res, args.verbose)
                finally:
                    problems = harness.end_module()
                    if problems:
                        res.report("FAIL", f"faults/{stem} (shared processes){suffix}",
                                   "\n".join(problems))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        res.failed += 1
    if res.failures:
        print(f"failed ({len(res.failures)}):", flush=True)
        for n in res.failures:
            print(f"  {n}", flush=True)
    print(f"time: {time.monotonic() - t0:.0f}s", flush=True)
    print(f"{res.passed} passed, {res.failed} failed, {res.skipped} skipped", flush=True)
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
