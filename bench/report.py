#!/usr/bin/env python3
"""report.py — the one table of `make bench`: reads the JSON files the benchmarks wrote with
`--json FILE` and prints every figure in one markdown table, each with its ratio against the
peer it names, under a description of the machine (CPU model, cores, memory, Debian version,
date, load average).

usage: report.py [--out report.md] FILE [FILE ...]   (make bench: build/bench-results/*.json)

A missing or malformed file is named on stderr and makes the exit status 1 (the table is still
printed with what was read). --out: also write the same markdown to that file.

The format (cinemon-bench/1), written by bench/poll_bench.py, bench/ingest_bench.py and
bench/dashboard_bench.py; a copy is in /work/notes/bench-json-format.md. A benchmark may call
`report.write_results(...)` (below) to write it, or write the same JSON itself.

One JSON object per file, written once at the end of the run (to FILE.tmp, then renamed):

  {
    "format": "cinemon-bench/1",
    "bench": "dashboard",
    "title": "Dashboard API, 10,000 screens, a year of hourly roll-ups",
    "command": "python3 bench/dashboard_bench.py --build build --json build/bench-results/...",
    "started": "2026-12-07T17:40:00Z",
    "finished": "2026-12-07T18:02:11Z",
    "load": [1.9, 3.2],
    "notes": ["free text, one line each, printed under the table"],
    "rows": [
      {"case": "10,000 screens, 4 clients", "system": "cinemon SQLite",
       "metric": "overview level=province median", "value": 279.0, "unit": "ms",
       "better": "lower", "ratio_vs": "cinemon SQLite"},
      {"case": "10,000 screens, 4 clients", "system": "cinemon PG",
       "metric": "overview level=province median", "value": 231.0, "unit": "ms",
       "better": "lower", "ratio_vs": "cinemon SQLite"}
    ]
  }

Top level:
  format    required: the string "cinemon-bench/1"; anything else is refused.
  bench     required: short name of the benchmark (poll, ingest, dashboard); the table's
            first column.
  command   required: the command line as run.
  started, finished   required: UTC, ISO 8601 with Z, seconds precision.
  title     optional: one line.
  load      optional: [1-minute load average at the start, at the end].
  notes     optional: list of strings, printed under the table.
  rows      required: list, printed in this order.

A row:
  case      required string: the conditions of the figure ("1000 devices", "1 point per
            series", "90,000 screens, 4 clients"). Ratios compare rows of the same bench,
            case and metric only.
  system    required string: what was measured ("cinemon-agent", "InfluxDB 1.6").
  metric    required string: what the number is ("CPU per round", "samples/s", "peak RSS").
  value     required: a number, or null when it could not be measured (say why in note).
  unit      required string: "CPU-s", "MB", "ms", "samples/s", "" ...
  better    optional: "lower" or "higher" (printed as ↓ / ↑ after the metric).
  ratio_vs  optional: the system of the peer this row is compared with (same bench, case and
            metric), or a list of such names (one ratio per peer). Printed as value / peer
            value with the peer's name ("0.04× InfluxDB 1.6"); a row compared with itself
            shows 1.00×. Absent or null, or the row's own value null: no ratio; a peer
            without a row or with a null or zero value: "–".
  note      optional string: a short remark, printed in the row's last column.

Benchmarks do not compute ratios themselves: they name the peer and report.py divides.
Numbers are plain JSON numbers (no NaN or Infinity: null instead).
"""
import argparse
import datetime
import json
import os
import platform
import sys

FORMAT = "cinemon-bench/1"
ROW_KEYS = {"case", "system", "metric", "value", "unit", "better", "ratio_vs", "note"}


def utc_iso(t):
    """A POSIX time as the format's UTC timestamp."""
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def check(doc):
    """Raise ValueError naming the first thing in doc that breaks the format."""
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError(f"format: not {FORMAT!r}")
    for k in ("bench", "command", "started", "finished"):
        if not isinstance(doc.get(k), str) or not doc[k]:
            raise ValueError(f"{k}: a non-empty string is required")
    if "notes" in doc and not (isinstance(doc["notes"], list)
                               and all(isinstance(n, str) for n in doc["notes"])):
        raise ValueError("notes: a list of strings")
    if not isinstance(doc.get("rows"), list):
        raise ValueError("rows: a list is required")
    for i, r in enumerate(doc["rows"]):
        at = f"rows[{i}]"
        if not isinstance(r, dict):
            raise ValueError(f"{at}: an object")
        extra = set(r) - ROW_KEYS
        if extra:
            raise ValueError(f"{at}.{sorted(extra)[0]}: unknown key")
        for k in ("case", "system", "metric", "unit"):
            if not isinstance(r.get(k), str):
                raise ValueError(f"{at}.{k}: a string is required")
        v = r.get("value", "absent")
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))
                              or v != v or v in (float("inf"), float("-inf"))):
            raise ValueError(f"{at}.value: a finite number or null")
        if r.get("better") not in (None, "lower", "higher"):
            raise ValueError(f"{at}.better: 'lower' or 'higher'")
        vs = r.get("ratio_vs")
        if vs is not None and not isinstance(vs, str) and not (
                isinstance(vs, list) and all(isinstance(x, str) for x in vs)):
            raise ValueError(f"{at}.ratio_vs: a string or a list of strings")
        if "note" in r and not isinstance(r["note"], str):
            raise ValueError(f"{at}.note: a string")


def write_results(path, bench, rows, started, load=None, notes=None, title=None, command=None):
    """Write one benchmark's figures in the format above (checked first), atomically."""
    doc = {"format": FORMAT, "bench": bench,
           "command": command or " ".join(["python3"] + sys.argv),
           "started": utc_iso(started), "finished": utc_iso(datetime.datetime.now().timestamp()),
           "rows": rows}
    if title:
        doc["title"] = title
    if load is not None:
        doc["load"] = [round(x, 2) for x in load]
    if notes:
        doc["notes"] = list(notes)
    check(doc)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


# ---- the machine ---------------------------------------------------------------------

def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def machine():
    """One line: CPU model, cores, memory, Debian version, kernel."""
    cpu = next((l.split(":", 1)[1].strip() for l in read_text("/proc/cpuinfo").splitlines()
                if l.startswith("model name")), platform.processor() or "unknown CPU")
    mem_kb = next((int(l.split()[1]) for l in read_text("/proc/meminfo").splitlines()
                   if l.startswith("MemTotal:")), 0)
    osr = dict(l.split("=", 1) for l in read_text("/etc/os-release").splitlines() if "=" in l)
    distro = osr.get("PRETTY_NAME", "unknown OS").strip('"')
    deb = read_text("/etc/debian_version").strip()
    if deb:
        distro += f" ({deb})"
    return (f"{cpu}, {os.cpu_count()} cores, {mem_kb / 2**20:.1f} GiB memory, {distro}, "
            f"Linux {platform.release()}")


# ---- the table -----------------------------------------------------------------------

def fmt_num(v):
    if v is None:
        return "–"
    a = abs(v)
    if a >= 100:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}" if a >= 0.001 or a == 0 else f"{v:.2g}"


def fmt_ratio(r):
    if r >= 10:
        return f"{r:.1f}×"
    return f"{r:.2f}×" if r >= 0.1 else f"{r:.2g}×"


def ratios(doc, row):
    """'0.21× snmp_exporter 0.21; 0.35× collectd 5.12' for the peers a row names."""
    vs = row.get("ratio_vs")
    if vs is None or row.get("value") is None:
        return ""
    out = []
    for peer in [vs] if isinstance(vs, str) else vs:
        p = next((r for r in doc["rows"] if r["system"] == peer and r["case"] == row["case"]
                  and r["metric"] == row["metric"]), None)
        v = row.get("value")
        if p is None or not p.get("value") or v is None:
            out.append(f"– {peer}")
        elif peer == row["system"]:
            out.append("1.00×")
        else:
            out.append(f"{fmt_ratio(v / p['value'])} {peer}")
    return "; ".join(out)


def cell(s):
    return str(s).replace("|", "\\|")


def render(docs):
    """The markdown: machine, one line per benchmark, the table, the notes."""
    out = []
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    out.append(f"## cinemon benchmarks ({now})\n")
    out.append(f"Machine: {machine()}; load average now "
               f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}.\n")
    for d in docs:
        load = d.get("load") or []
        ld = f", load average {load[0]:.1f} → {load[-1]:.1f}" if len(load) >= 2 else ""
        out.append(f"- **{d['bench']}**{': ' + d['title'] if d.get('title') else ''} — "
                   f"`{d['command']}`, {d['started']} – {d['finished']}{ld}")
    out.append("")
    out.append("| bench | case | system | metric | value | unit | ratio | note |")
    out.append("|---|---|---|---|---:|---|---|---|")
    for d in docs:
        for r in d["rows"]:
            arrow = {"lower": " ↓", "higher": " ↑"}.get(r.get("better"), "")
            out.append("| " + " | ".join(cell(x) for x in (
                d["bench"], r["case"], r["system"], r["metric"] + arrow,
                fmt_num(r.get("value")), r["unit"], ratios(d, r), r.get("note", ""))) + " |")
    out.append("\n↓ lower is better, ↑ higher is better; ratio = value / the named system's "
               "value in the same bench, case and metric.")
    for d in docs:
        if d.get("notes"):
            out.append(f"\n{d['bench']}:")
            out.extend(f"- {n}" for n in d["notes"])
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", metavar="FILE", help="also write the markdown to FILE")
    ap.add_argument("files", nargs="*", metavar="FILE")
    args = ap.parse_args()
    docs, status = [], 0
    if not args.files:
        print("report.py: no result files (run a benchmark with --json first)", file=sys.stderr)
        status = 1
    for path in args.files:
        try:
            with open(path) as f:
                doc = json.load(f)
            check(doc)
            docs.append(doc)
        except (OSError, ValueError) as e:  # json.JSONDecodeError is a ValueError
            print(f"report.py: {path}: {e}", file=sys.stderr)
            status = 1
    text = render(docs)
    sys.stdout.write(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return status


if __name__ == "__main__":
    sys.exit(main())
