#!/usr/bin/python3
"""run.py - cinemon's test runner (standard library only).

  tests/run.py --build build [--asan-build build-asan] [--only unit|e2e|faults] [-k SUBSTRING]

(a) every <build>/tests/test_* binary (cmocka, TAP output) - each TAP line is a case;
    a crash, timeout or non-zero exit without a TAP failure is one failure named after
    the binary;
(b) every tests/e2e/test_*.py module - each test_* function is a case; harness.Skip
    skips it, any other exception fails it;
(c) the same for tests/faults/test_*.py, the delivery fault suite (make test-faults runs it
    three times in a row: --only faults --repeat 3).
--repeat N runs the whole selection N times in a row (names suffixed " #round").
With --asan-build both run a second time against that build, names suffixed " [asan]".
PostgreSQL: every unit binary whose source includes store_fixture.h runs a second time with
CINEMON_TEST_PG set (names suffixed " [pg]"), against one server started for the run by
tests/pgserver.py (fsync off) and stopped at the end, or against the server of CINEMON_TEST_PG
when it is already set. Without PostgreSQL installed, one SKIP line says so. The e2e cases
of the plain build run a second time with every collector a case starts without choosing its
store on PostgreSQL (names suffixed " [pg]"; harness.STORE_PG); modules that choose their
stores themselves (test_cluster, test_tiers: BACKENDS_EXPLICIT) run once.
Prints "PASS name" / "FAIL name" / "SKIP name (why)" per case and, last, exactly one line
"N passed, N failed, N skipped". Exit status 1 when anything failed.
"""

import argparse
import concurrent.futures
import importlib.util
import inspect
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
import pgserver  # noqa: E402

UNIT_SRC = REPO / "tests" / "unit"
E2E = REPO / "tests" / "e2e"
FAULTS = REPO / "tests" / "faults"
SHARED = Path(os.environ.get("CINEMON_SHARED") or (REPO.parent / "shared")).resolve()
UNIT_TIMEOUT_S = 120
E2E_CASE_TIMEOUT_S = 300
ASAN_ENV = {"ASAN_OPTIONS": "detect_leaks=1:abort_on_error=1",
            "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}

TAP_RE = re.compile(r"^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?([^#]*?)\s*(?:#\s*(SKIP|TODO)\b\s*(.*))?$",
                    re.IGNORECASE)


class Results:
    def __init__(self):
        self.passed = self.failed = self.skipped = 0
        self.failures = []

    def report(self, status, name, detail=None):
        if status == "PASS":
            self.passed += 1
            print(f"PASS {name}", flush=True)
        elif status == "SKIP":
            self.skipped += 1
            print(f"SKIP {name} ({detail or 'skipped'})", flush=True)
        else:
            self.failed += 1
            self.failures.append(name)
            print(f"FAIL {name}", flush=True)
            if detail:
                print(_indent(detail), flush=True)


def _indent(text, limit=200):
    lines = text.rstrip().splitlines()
    if len(lines) > limit:
        lines = lines[:20] + [f"... ({len(lines) - limit} lines cut) ..."] + lines[-(limit - 20):]
    return "\n".join("    " + ln for ln in lines)


# ------------------------------------------------------------------ unit (cmocka)

def unit_binaries(build):
    d = build / "tests"
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("test_*")
                  if p.is_file() and os.access(p, os.X_OK) and p.suffix not in (".o", ".d"))


def store_fixture_binaries():
    """Names of the unit tests whose source includes store_fixture.h (they run on both
    backends)."""
    names = set()
    for src in UNIT_SRC.glob("test_*.c"):
        try:
            if '#include "store_fixture.h"' in src.read_text(errors="replace"):
                names.add(src.stem)
        except OSError:
            pass
    return names


class PgForUnits:
    """The PostgreSQL server of the [pg] unit runs: the one of CINEMON_TEST_PG when set, else
    one started (fsync off) at first need and stopped by close(). conninfo() is None when there
    is none (why says why; reported once)."""

    def __init__(self):
        self.given = os.environ.get("CINEMON_TEST_PG") or None
        self.srv = None
        self.tmp = None
        self.why = None
        self.reported = False

    def installed(self):
        return bool(self.given) or pgserver.bindir() is not None

    def conninfo(self):
        if self.given:
            return self.given
        if self.srv is None and self.why is None:
            self.tmp = tempfile.mkdtemp(prefix="cinemon-pg-", dir="/tmp")
            try:
                self.srv = pgserver.start(self.tmp, fsync=False)
            except pgserver.PgServerError as e:
                self.why = str(e)
        return self.srv.conninfo if self.srv else None

    def close(self):
        try:
            if self.srv is not None:
                self.srv.stop()
        except pgserver.PgServerError as e:
            print(f"warning: {e} (data in {self.tmp})", flush=True)
            return
        finally:
            self.srv = None
        if self.tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None


def run_unit_binary(path, asan, extra_env=None):
    """Run one cmocka binary (extra_env: CINEMON_TEST_PG for a [pg] run). Returns (cases, rc,
    output, timed_out); cases are (status, name, detail) in TAP order."""
    env = dict(os.environ)
    env.pop("CINEMON_TEST_PG", None)
    env["CMOCKA_MESSAGE_OUTPUT"] = "TAP"
    env["CINEMON_SHARED"] = str(SHARED)
    env.update(extra_env or {})
    if asan:
        env.update(ASAN_ENV)
    timed_out = False
    try:
        p = subprocess.Popen([str(path)], cwd=str(REPO), env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    except OSError as e:
        return [], -1, f"cannot start {path}: {e}", False
    try:
        out, err = p.communicate(timeout=UNIT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
    out = out.decode(errors="replace")
    err = err.decode(errors="replace")
    return parse_tap(out), p.returncode, out + ("\n" if out and err else "") + err, timed_out


def parse_tap(text):
    """Cases of a cmocka TAP output; a "# skip: why" line (store_fixture.h's fx_sqlite_only)
    gives the reason of the skip that follows it."""
    cases, seen = [], {}
    cur = None
    skip_why = None
    for line in text.splitlines():
        if line.startswith("# skip: "):
            skip_why = line[len("# skip: "):].strip()
            continue
        m = TAP_RE.match(line.strip())
        if m and not line.startswith("#"):
            okword, _num, name, directive, why = m.groups()
            name = (name or "").strip()
            if directive and directive.upper() == "SKIP":
                if not name:
                    name, why = (why or "").strip(), "skipped"
                cur = ["SKIP", name, skip_why or why or "skipped"]
            else:
                cur = ["PASS" if okword.lower() == "ok" else "FAIL", name, ""]
                # cmocka appends why a test could not run (its setup failed) to its name
                if " Could not run test: " in name:
                    cur[1], why = name.split(" Could not run test: ", 1)
                    cur[2] = f"could not run test: {why}\n"
            skip_why = None
            if not name:
                cur[1] = f"#{_num}"
            n = seen.get(cur[1], 0)
            seen[cur[1]] = n + 1
            if n:
                cur[1] = f"{cur[1]}#{n + 1}"
            cases.append(cur)
        elif line.startswith("#") and cur is not None and cur[0] == "FAIL":
            if re.match(r"^#\s*(not )?ok - ", line):  # group summary line
                continue
            cur[2] += line[1:].strip() + "\n"
    return [tuple(c) for c in cases]


def _pg_selected(kfilter, fixture_bins):
    """Whether -k can select anything of the [pg] runs."""
    return kfilter is None or kfilter in " [pg]" or any(
        kfilter in f"unit/{n}" or f"unit/{n}".startswith(kfilter) or n in kfilter
        for n in fixture_bins)


def run_unit(build, suffix, asan, kfilter, res, jobs, pg=None):
    bins = unit_binaries(build)
    if not bins:
        res.report("FAIL", f"unit ({build}/tests/test_*){suffix}",
                   f"no unit test binaries in {build}/tests (run make)")
        return
    # (binary, extra environment, name suffix): every binary on SQLite, then the store tests
    # again on PostgreSQL
    runs = [(b, None, suffix) for b in bins]
    fixture_bins = store_fixture_binaries()
    if pg is not None and _pg_selected(kfilter, fixture_bins):
        conninfo = pg.conninfo()
        if conninfo:
            runs += [(b, {"CINEMON_TEST_PG": conninfo}, " [pg]" + suffix)
                     for b in bins if b.name in fixture_bins]
        elif not pg.reported:
            pg.reported = True
            res.report("FAIL", "unit [pg] (PostgreSQL server for the store tests)", pg.why)
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = [(b, sfx, ex.submit(run_unit_binary, b, asan, extra)) for b, extra, sfx in runs]
        for b, sfx, fut in futs:
            cases, rc, output, timed_out = fut.result()
            prefix = f"unit/{b.name}"
            bin_selected = kfilter is None or kfilter in prefix + sfx
            any_tap_fail = any(c[0] == "FAIL" for c in cases)
            for status, name, detail in cases:
                full = f"{prefix}/{name}{sfx}"
                if not bin_selected and kfilter not in full:
                    continue
                if status == "FAIL":
                    detail = detail.strip() or _tail(output)
                    if detail.startswith("could not run test"):  # the output says why
                        detail += "\n" + _tail(output, 15)
                res.report(status, full, detail)
            selected = bin_selected or any(
                kfilter in f"{prefix}/{c[1]}{sfx}" for c in cases)
            if not selected:
                continue
            why = None
            if timed_out:
                why = f"timed out after {UNIT_TIMEOUT_S}s"
            elif rc is not None and rc < 0:
                why = f"killed by signal {-rc} ({_signame(-rc)})"
            elif rc != 0 and not any_tap_fail:
                why = f"exit status {rc} without a TAP failure"
            elif not cases and rc == 0:
                why = "no TAP output (not a cmocka test?)"
            if why:
                res.report("FAIL", prefix + sfx, f"{why}\n{_tail(output, 60)}")


def _signame(n):
    try:
        return signal.Signals(n).name
    except ValueError:
        return "?"


def _tail(text, n=40):
    lines = text.rstrip().splitlines()
    return "\n".join(lines[-n:])


# ------------------------------------------------------------------ e2e

class CaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise CaseTimeout(f"case took longer than {E2E_CASE_TIMEOUT_S}s")


def suite_modules(folder):
    return sorted(folder.glob("test_*.py"))


def load_module(path):
    name = f"cinemon_{path.parent.name}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def run_e2e(build, suffix, asan, kfilter, res, folder=E2E, store_pg=False):
    """The Python cases of folder (tests/e2e, or tests/faults: the delivery fault suite).
    store_pg: the PostgreSQL pass — every collector a case starts without choosing its store
    stores in PostgreSQL (harness.STORE_PG); modules that choose their stores themselves
    (BACKENDS_EXPLICIT = True) are left out of it."""
    for d in (folder, E2E):
        if str(d) not in sys.path:
            sys.path.insert(0, str(d))
    import harness  # noqa: E402
    saved_env = {k: os.environ.get(k) for k in ASAN_ENV}
    if asan:
        os.environ.update(ASAN_ENV)
    harness.configure(build, asan, store_pg)
    old_handler = signal.signal(signal.SIGALRM, _alarm)
    try:
        for path in suite_modules(folder):
            prefix = f"{folder.name}/{path.stem}"
            try:
                mod = load_module(path)
            except Exception:  # noqa: BLE001
                if kfilter is None or kfilter in prefix + suffix:
                    res.report("FAIL", prefix + suffix, "cannot import:\n" + traceback.format_exc())
                continue
            if store_pg and getattr(mod, "BACKENDS_EXPLICIT", False):
                continue
            cases = [(n, f) for n, f in vars(mod).items()
                     if n.startswith("test_") and inspect.isfunction(f)
                     and f.__module__ == mod.__name__]
            cases.sort(key=lambda nf: nf[1].__code__.co_firstlineno)
            cases = [(n, f) for n, f in cases
                     if kfilter is None or kfilter in f"{prefix}/{n}{suffix}"]
            if not cases:
                continue
            harness.begin_module(path.stem + ("-asan" if asan else ""))
            try:
                for n, f in cases:
                    run_case(harness, f"{prefix}/{n}{suffix}", f, res)
            finally:
                problems = harness.end_module()
                if problems:
                    res.report("FAIL", f"{prefix} (shared processes){suffix}",
                               "\n".join(problems))
    finally:
        signal.signal(signal.SIGALRM, old_handler)
        harness.configure(build, asan, False)
        for k, v in saved_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_case(harness, name, fn, res):
    env = harness.Env(name.split("/")[-1].split(" ")[0])
    status, detail = "PASS", None
    t0 = time.monotonic()
    signal.alarm(E2E_CASE_TIMEOUT_S)
    try:
        if len(inspect.signature(fn).parameters) >= 1:
            fn(env)
        else:
            fn()
    except harness.Skip as e:
        status, detail = "SKIP", str(e) or "skipped"
    except BaseException as e:  # noqa: BLE001 - a case never stops the run
        if isinstance(e, KeyboardInterrupt):
            signal.alarm(0)
            env.close()
            raise
        status = "FAIL"
        detail = traceback.format_exc()
        logs = env.logs(15)
        mlogs = harness._module_env.logs(15) if harness._module_env else ""
        if logs or mlogs:
            detail += "\nprocess output (tails):\n" + "\n".join(x for x in (logs, mlogs) if x)
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
    if os.environ.get("CINEMON_TIMES") == "1":
        print(f"  ({time.monotonic() - t0:.1f}s) {name}", flush=True)
    res.report(status, name, detail)


# ------------------------------------------------------------------ main

def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main():
    # SIGTERM/SIGHUP unwind like Ctrl-C: every started process is stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    signal.signal(signal.SIGHUP, _interrupt)
    ap = argparse.ArgumentParser(description="run cinemon's unit and end-to-end tests")
    ap.add_argument("--build", default="build", help="build folder (default build)")
    ap.add_argument("--asan-build", help="also run everything against this ASan/UBSan build")
    ap.add_argument("--only", choices=("unit", "e2e", "faults"))
    ap.add_argument("-k", dest="kfilter", help="run only cases whose name contains this")
    ap.add_argument("--repeat", type=int, default=1, help="run everything N times in a row")
    ap.add_argument("-j", dest="jobs", type=int, default=max(1, os.cpu_count() or 1),
                    help="unit test binaries run in parallel (default: cores)")
    args = ap.parse_args()
    os.chdir(REPO)
    builds = [(Path(args.build).resolve(), "", Path(args.build).name.endswith("asan"))]
    if args.asan_build:
        builds.append((Path(args.asan_build).resolve(), " [asan]", True))
    res = Results()
    t0 = time.monotonic()
    pg = None
    if args.only in (None, "unit"):
        pg = PgForUnits()
        if not pg.installed():
            pg = None
            if _pg_selected(args.kfilter, store_fixture_binaries()):
                res.report("SKIP", "unit [pg] (the store tests on PostgreSQL)",
                           "PostgreSQL server not installed (apt-get install postgresql): the "
                           "store tests ran on SQLite only")
    try:
        for rnd in range(1, args.repeat + 1):
            for build, suffix, asan in builds:
                if args.repeat > 1:
                    suffix = f"{suffix} #{rnd}"
                # A plain --build build-asan run (make asan) needs the sanitizer options too.
                if args.only in (None, "unit"):
                    run_unit(build, suffix, asan, args.kfilter, res, args.jobs, pg)
                if args.only in (None, "e2e"):
                    run_e2e(build, suffix, asan, args.kfilter, res)
                    # the same cases with the collectors on PostgreSQL (plain build only)
                    if not asan and pgserver.bindir() is not None:
                        run_e2e(build, suffix + " [pg]", asan, args.kfilter, res, store_pg=True)
                if args.only in (None, "faults"):
                    run_e2e(build, suffix, asan, args.kfilter, res, FAULTS)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        res.failed += 1
    finally:
        if pg is not None:
            pg.close()
    if res.failures:
        print(f"failed ({len(res.failures)}):", flush=True)
        for n in res.failures:
            print(f"  {n}", flush=True)
    print(f"time: {time.monotonic() - t0:.0f}s", flush=True)
    print(f"{res.passed} passed, {res.failed} failed, {res.skipped} skipped", flush=True)
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(main())
