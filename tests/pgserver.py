#!/usr/bin/python3
"""pgserver.py - a throw-away PostgreSQL server for cinemon's tests (standard library only).

As a module (tests/run.py, the e2e harness):

    import pgserver
    if pgserver.bindir() is None: ...skip...
    srv = pgserver.start("/tmp/some-test-folder", fsync=False)
    srv.conninfo        # "host=127.0.0.1 port=NNNNN user=postgres dbname=postgres"
    srv.stop()          # pg_ctl stop -m fast, then signals to the postmaster's PID

As a command, for humans:

    tests/pgserver.py start DIR [--no-fsync] [--port N]   prints the conninfo
    tests/pgserver.py stop DIR [--remove]
    tests/pgserver.py status DIR

The server uses Debian's binaries (/usr/lib/postgresql/<version>/bin, the newest found;
CINEMON_PG_BINDIR overrides), a data directory DIR/pg/data, a unix socket directory DIR/pg/sock
and a free loopback TCP port; it listens on 127.0.0.1 only, with `trust` authentication for
the superuser `postgres`. initdb refuses to run as root: when this process is root, initdb,
pg_ctl and postgres run as the `postgres` user (runuser) and DIR/pg is made theirs. fsync is on
unless fsync=False (unit tests: nothing there needs to survive a power cut). DIR/pg/server.json
remembers the PID, port and conninfo for `stop`. DIR/pg/postgres.log is the server's log.
"""

import argparse
import glob
import json
import os
import pwd
import re
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

PG_USER = "postgres"  # the OS user the server runs as when we are root, and the superuser
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes; ".s.PGSQL.NNNNN" goes after the folder


class PgServerError(Exception):
    """The server could not be set up, started or stopped; the message says why."""


def bindir():
    """The folder of initdb/pg_ctl/postgres (newest version installed), or None."""
    env = os.environ.get("CINEMON_PG_BINDIR")
    cands = [env] if env else glob.glob("/usr/lib/postgresql/*/bin")

    def version(p):
        m = re.search(r"/postgresql/(\d+)(?:\.(\d+))?/", p + "/")
        return (int(m.group(1)), int(m.group(2) or 0)) if m else (0, 0)

    for d in sorted(cands, key=version, reverse=True):
        if all(os.access(os.path.join(d, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(d)
    return None


def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_root():
    return os.geteuid() == 0


def _argv(argv):
    """argv run as the postgres user when we are root, else as ourselves."""
    if _as_root():
        return ["runuser", "-u", PG_USER, "--"] + [str(a) for a in argv]
    return [str(a) for a in argv]


def _run(argv, cwd, timeout):
    """Run a server tool; (returncode, combined output)."""
    try:
        p = subprocess.run(_argv(argv), cwd=str(cwd), stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                           env=_tool_env())
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        return -1, f"{argv[0]}: timed out after {timeout}s\n{out}"
    except OSError as e:
        return -1, f"cannot run {argv[0]}: {e}"
    return p.returncode, p.stdout.decode(errors="replace")


def _tool_env():
    """The environment of the server tools: ours, minus what would point them elsewhere."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    env["LANG"] = "C"
    return env


def _pid_alive(pid):
    """1 when pid is a live postgres process (checked by its command line: PIDs get reused)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().split(b"\0")[0]
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False  # a zombie: exited, only its parent has not reaped it
    except (OSError, IndexError):
        pass
    return os.path.basename(cmd) in (b"postgres", b"postmaster")


def _wait_gone(pid, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not _pid_alive(pid):
            return True
        time.sleep(0.05)
    return not _pid_alive(pid)


class PgServer:
    """One running server. conninfo: libpq connection string over TCP; socket_conninfo: the
    same over the unix socket; pid: the postmaster's PID."""

    def __init__(self, root, port, pid, bindir_, fsync):
        self.root = Path(root)  # DIR/pg
        self.port = port
        self.pid = pid
        self.bindir = Path(bindir_)
        self.fsync = fsync

    @property
    def datadir(self):
        return self.root / "data"

    @property
    def sockdir(self):
        return self.root / "sock"

    @property
    def logfile(self):
        return self.root / "postgres.log"

    @property
    def conninfo(self):
        return f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres"

    @property
    def socket_conninfo(self):
        return f"host={self.sockdir} port={self.port} user={PG_USER} dbname=postgres"

    def alive(self):
        return _pid_alive(self.pid)

    def log_tail(self, n=30):
        try:
            lines = self.logfile.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def stop(self, remove=False):
        """pg_ctl stop -m fast; if the postmaster is still there, SIGQUIT then SIGKILL to its PID.
        remove: delete DIR/pg afterwards. Raises PgServerError when it would not die."""
        if _pid_alive(self.pid):
            _run([self.bindir / "pg_ctl", "stop", "-D", self.datadir, "-m", "fast", "-w",
                  "-t", str(STOP_TIMEOUT_S)], self.root, STOP_TIMEOUT_S + 10)
            for sig, wait in ((signal.SIGQUIT, 5), (signal.SIGKILL, 10)):
                if not _pid_alive(self.pid):
                    break
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
                _wait_gone(self.pid, wait)
            if _pid_alive(self.pid):
                raise PgServerError(f"postgres (PID {self.pid}) did not stop")
        try:
            (self.root / "server.json").unlink()
        except OSError:
            pass
        if remove:
            shutil.rmtree(self.root, ignore_errors=True)

    def _save(self):
        state = {"pid": self.pid, "port": self.port, "bindir": str(self.bindir),
                 "fsync": self.fsync, "conninfo": self.conninfo}
        (self.root / "server.json").write_text(json.dumps(state) + "\n")

    @classmethod
    def load(cls, base_dir):
        """The server started in base_dir (from DIR/pg/server.json), or None."""
        root = Path(base_dir) / "pg"
        try:
            st = json.loads((root / "server.json").read_text())
        except (OSError, ValueError):
            return None
        return cls(root, st["port"], st["pid"], st["bindir"], st.get("fsync", True))


def _prepare(base):
    """DIR/pg (owned by the server's user) with data/ and sock/; checks that user can reach it."""
    base = Path(base).resolve()
    base.mkdir(parents=True, exist_ok=True)
    root = base / "pg"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(mode=0o700)
    (root / "sock").mkdir(mode=0o700)
    if len(str(root / "sock")) > SOCKET_PATH_MAX - 16:
        raise PgServerError(f"{root}/sock: path too long for a unix socket (use a shorter folder)")
    if _as_root():
        try:
            pw = pwd.getpwnam(PG_USER)
        except KeyError:
            raise PgServerError(f"no user '{PG_USER}' (is the postgresql package installed?)")
        for p in (root, root / "sock"):
            os.chown(p, pw.pw_uid, pw.pw_gid)
        # The server's user must be able to walk down to DIR/pg: the test's own folder may be
        # made traversable (not readable); a folder above it is not ours to change.
        st = base.stat()
        if not st.st_mode & stat.S_IXOTH:
            os.chmod(base, stat.S_IMODE(st.st_mode) | stat.S_IXOTH)
        for parent in base.parents:
            if not parent.stat().st_mode & stat.S_IXOTH:
                raise PgServerError(f"user {PG_USER} cannot reach {parent} (mode "
                                    f"{oct(stat.S_IMODE(parent.stat().st_mode))}): put the "
                                    "test folder under /tmp")
    return root


def start(base_dir, fsync=True, port=None, settings=None, timeout=START_TIMEOUT_S):
    """initdb and start a server under base_dir/pg; returns a PgServer (ready for connections).
    settings: more postgres -c name=value options. Raises PgServerError with the reason (and
    the tail of the server's log)."""
    bd = bindir()
    if bd is None:
        raise PgServerError("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin; "
                            "apt-get install postgresql)")
    root = _prepare(base_dir)
    rc, out = _run([bd / "initdb", "-D", root / "data", "-A", "trust", "-U", PG_USER,
                    "-E", "UTF8", "--locale=C"] + ([] if fsync else ["--no-sync"]),
                   root, timeout)
    if rc != 0:
        raise PgServerError(f"initdb failed (status {rc}):\n{out[-3000:]}")
    opts = {"listen_addresses": "127.0.0.1", "unix_socket_directories": str(root / "sock"),
            "fsync": "on" if fsync else "off", "max_connections": "200",
            "shared_buffers": "32MB", "logging_collector": "off"}
    if not fsync:
        opts["full_page_writes"] = "off"
    opts.update(settings or {})
    attempts = 1 if port else 5
    last = ""
    for _ in range(attempts):
        p = port or free_port()
        o = " ".join(["-p", str(p)] + [f"-c {shlex.quote(f'{k}={v}')}" for k, v in opts.items()])
        rc, out = _run([bd / "pg_ctl", "start", "-D", root / "data", "-l", root / "postgres.log",
                        "-w", "-t", str(timeout), "-o", o], root, timeout + 10)
        pid = _postmaster_pid(root / "data")
        if rc == 0 and pid and _pid_alive(pid):
            srv = PgServer(root, p, pid, bd, fsync)
            srv._save()
            return srv
        log = _tail_file(root / "postgres.log")
        last = f"pg_ctl start failed (status {rc}):\n{out[-2000:]}\nserver log:\n{log}"
        if pid and _pid_alive(pid):  # started but not ready in time: do not leave it behind
            PgServer(root, p, pid, bd, fsync).stop()
        if "already in use" not in log and "could not bind" not in log:
            break
    raise PgServerError(last)


def _postmaster_pid(datadir):
    try:
        return int((Path(datadir) / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None


def _tail_file(path, n=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return ""


def main(argv=None):
    ap = argparse.ArgumentParser(description="a throw-away PostgreSQL server for cinemon's tests")
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start", help="initdb and start a server under DIR/pg; print its conninfo")
    s.add_argument("dir")
    s.add_argument("--no-fsync", action="store_true", help="fsync=off (faster, not crash-safe)")
    s.add_argument("--port", type=int, help="TCP port (default: a free one)")
    t = sub.add_parser("stop", help="stop the server started under DIR")
    t.add_argument("dir")
    t.add_argument("--remove", action="store_true", help="also delete DIR/pg")
    u = sub.add_parser("status", help="is the server under DIR running?")
    u.add_argument("dir")
    a = ap.parse_args(argv)
    try:
        if a.cmd == "start":
            old = PgServer.load(a.dir)
            if old and old.alive():
                print(f"pgserver: already running (PID {old.pid}): {old.conninfo}", file=sys.stderr)
                return 1
            srv = start(a.dir, fsync=not a.no_fsync, port=a.port)
            print(srv.conninfo)
            print(f"pgserver: PID {srv.pid}, log {srv.logfile}; stop with: {sys.argv[0]} stop "
                  f"{a.dir}", file=sys.stderr)
            return 0
        srv = PgServer.load(a.dir)
        if a.cmd == "status":
            if srv and srv.alive():
                print(f"running (PID {srv.pid}): {srv.conninfo}")
                return 0
            print("not running")
            return 1
        if srv is None:
            pid = _postmaster_pid(Path(a.dir) / "pg" / "data")
            if not pid:
                print(f"pgserver: no server under {a.dir}", file=sys.stderr)
                return 1
            srv = PgServer(Path(a.dir) / "pg", 0, pid, bindir() or "/nonexistent", True)
        srv.stop(remove=a.remove)
        return 0
    except PgServerError as e:
        print(f"pgserver: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
