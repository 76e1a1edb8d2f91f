"""Aggregation across the worker processes of one server (gunicorn, uvicorn --workers).

Nothing to set up: a worker whose parent process is a gunicorn, uvicorn, hypercorn or
granian master joins the group keyed by that parent's pid and start time, in a private
directory under the system temp dir. Each member

- listens on ``<pid>.sock`` in that directory and, when asked, folds its buffers and
  answers with its current families, after writing them to ``<pid>.json`` (so every
  count any scrape has seen is on disk before it is reported);
- when scraped itself, asks every live sibling for its families and merges them with
  its own (see :class:`~inferwatch.sdk.family.FamilySnapshot` for the merge modes);
- on exit writes its final state.

A worker that is gone (exited, killed, recycled by ``max_requests``) has its counters
and histograms folded into ``dead.json`` under a file lock, so totals never go
backwards; its gauges and per-process series disappear with it.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import json
import logging
import math
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from inferwatch.sdk.family import BucketCounts, FamilySnapshot, SampleValue
from inferwatch.sdk.sketch import QuantileSketch

log = logging.getLogger("inferwatch.workers")

_SUPERVISORS = frozenset({"gunicorn", "uvicorn", "hypercorn", "granian"})
_PYTHON = re.compile(r"^python[0-9.]*$")
#: Seconds to wait for a sibling's answer before using its last written state.
SIBLING_TIMEOUT = 2.0
WORKER_LABEL = "worker"


def supervisor_program(cmdline: list[str]) -> str | None:
    """The server program a command line runs (``gunicorn``, ``uvicorn``, ...), or None.

    Looks at the program itself, the script a Python interpreter runs, or the module
    of ``python -m``; never at other arguments (``sh -c "uvicorn app"`` is a shell).
    """
    if not cmdline:
        return None
    first = os.path.basename(cmdline[0]).split(":")[0]  # "gunicorn: master [app]"
    first = first.split()[0] if first.strip() else first
    if first in _SUPERVISORS:
        return first
    if _PYTHON.match(first) and len(cmdline) > 1:
        if cmdline[1] == "-m" and len(cmdline) > 2:
            module = cmdline[2].split(".")[0]
            return module if module in _SUPERVISORS else None
        script = os.path.basename(cmdline[1])
        return script if script in _SUPERVISORS else None
    return None


def detect_group_key(*, force: bool = False) -> str | None:
    """A key shared by all workers of this process's server, or None when not a worker."""
    import psutil

    try:
        parent = psutil.Process(os.getppid())
        cmdline = parent.cmdline()
        started = parent.create_time()
    except (psutil.Error, OSError):
        return None
    if not force and supervisor_program(cmdline) is None:
        return None
    return f"{parent.pid}-{int(started * 1000)}"


def group_dir(key: str) -> Path:
    """The private directory of a worker group (stale ones of dead servers removed)."""
    base = Path(tempfile.gettempdir()) / f"inferwatch-{os.getuid()}"
    base.mkdir(mode=0o700, exist_ok=True)
    _remove_stale_groups(base, keep=key)
    path = base / f"workers-{key}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def _remove_stale_groups(base: Path, keep: str) -> None:
    """Delete group directories whose server (the parent pid) no longer runs."""
    for path in base.glob("workers-*"):
        key = path.name.removeprefix("workers-")
        pid, _, _ = key.partition("-")
        if key == keep or not pid.isdigit() or _alive(int(pid)):
            continue
        shutil.rmtree(path, ignore_errors=True)


# -- serialisation -------------------------------------------------------------------


def _encode_value(value: SampleValue) -> Any:
    if isinstance(value, QuantileSketch):
        return {"sk": value.to_dict()}
    if isinstance(value, BucketCounts):
        return {"bc": [list(value.bounds), value.counts, value.sum]}
    return value


def _decode_value(data: Any) -> SampleValue:
    if isinstance(data, dict):
        if "sk" in data:
            return QuantileSketch.from_dict(data["sk"])
        bounds, counts, total = data["bc"]
        return BucketCounts(tuple(bounds), [float(c) for c in counts], float(total))
    return float(data)


def encode(families: list[FamilySnapshot]) -> bytes:
    """Families as JSON bytes (NaN and infinities kept)."""
    out = [
        {
            "name": f.name,
            "doc": f.documentation,
            "type": f.type,
            "labels": list(f.labelnames),
            "merge": f.merge,
            "samples": [[list(k), _encode_value(v)] for k, v in f.samples.items()],
        }
        for f in families
    ]
    return json.dumps(out, separators=(",", ":")).encode()


def decode(data: bytes) -> list[FamilySnapshot]:
    families = []
    for f in json.loads(data):
        fam = FamilySnapshot(f["name"], f["doc"], f["type"], tuple(f["labels"]), merge=f["merge"])
        for key, value in f["samples"]:
            fam.samples[tuple(key)] = _decode_value(value)
        families.append(fam)
    return families


# -- merging -------------------------------------------------------------------------


def _add(
    into: dict[tuple[str, ...], SampleValue], key: tuple[str, ...], value: SampleValue
) -> None:
    current = into.get(key)
    if current is None:
        into[key] = value.copy() if not isinstance(value, float | int) else float(value)
    elif isinstance(current, QuantileSketch) and isinstance(value, QuantileSketch):
        current.merge(value)
    elif isinstance(current, BucketCounts) and isinstance(value, BucketCounts):
        current.merge(value)
    elif isinstance(current, float | int) and isinstance(value, float | int):
        into[key] = float(current) + float(value)


def _is_durable(fam: FamilySnapshot) -> bool:
    """Whether a dead worker's values of this family are kept (totals, not readings)."""
    return fam.merge == "sum" and fam.type != "gauge"


def merge(
    local: list[FamilySnapshot],
    live: dict[str, list[FamilySnapshot]],
    dead: list[FamilySnapshot],
) -> list[FamilySnapshot]:
    """Combine the serving worker's families, live siblings' and the dead workers' totals.

    ``live`` maps worker id to families and includes the serving worker itself.
    """
    out: dict[str, FamilySnapshot] = {}

    def target(fam: FamilySnapshot) -> FamilySnapshot:
        existing = out.get(fam.name)
        if existing is None:
            labels = fam.labelnames + ((WORKER_LABEL,) if fam.merge == "all" else ())
            existing = FamilySnapshot(
                fam.name, fam.documentation, fam.type, labels, merge=fam.merge
            )
            out[fam.name] = existing
        return existing

    for fam in local:
        if fam.merge == "local":
            out[fam.name] = fam
    for worker, families in sorted(live.items()):
        for fam in families:
            if fam.merge == "local":
                continue
            tgt = target(fam)
            for key, value in fam.samples.items():
                if fam.merge == "all":
                    tgt.samples[(*key, worker)] = value
                elif fam.merge == "sum":
                    _add(tgt.samples, key, value)
                elif isinstance(value, float | int):
                    current = tgt.samples.get(key)
                    pick = max if fam.merge == "max" else min
                    tgt.samples[key] = (
                        float(value) if current is None else pick(float(current), float(value))  # type: ignore[arg-type]
                    )
    for fam in dead:
        if _is_durable(fam):
            tgt = target(fam)
            for key, value in fam.samples.items():
                _add(tgt.samples, key, value)
    order = {f.name: i for i, f in enumerate(local)}
    return sorted(out.values(), key=lambda f: (order.get(f.name, math.inf), f.name))


# -- the group -----------------------------------------------------------------------


class WorkerGroup:
    """This process's membership in a worker group; see the module docstring."""

    def __init__(self, key: str, snapshot: Callable[[], list[FamilySnapshot]]) -> None:
        self.key = key
        self.dir = group_dir(key)
        self.pid = os.getpid()
        self._snapshot = snapshot
        self._lock = threading.Lock()
        self._sock_path = self.dir / f"{self.pid}.sock"
        self._state_path = self.dir / f"{self.pid}.json"
        self._server = self._listen()
        atexit.register(self.close)

    # serving siblings

    def _listen(self) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            self._sock_path.unlink()
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self._sock_path))
        server.listen(16)
        thread = threading.Thread(
            target=self._serve, args=(server,), name="inferwatch-workers", daemon=True
        )
        thread.start()
        return server

    def _serve(self, server: socket.socket) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(SIBLING_TIMEOUT)
                    conn.recv(64)
                    conn.sendall(self.persist(self._snapshot()))
                except Exception as exc:  # a sibling went away mid-answer
                    log.debug("worker %s: answering a sibling failed: %r", self.pid, exc)

    def persist(self, families: list[FamilySnapshot]) -> bytes:
        """Write this worker's families (without host-local ones) to its state file."""
        data = encode([f for f in families if f.merge != "local"])
        with self._lock:
            tmp = self._state_path.with_suffix(".tmp")
            tmp.write_bytes(data)
            os.replace(tmp, self._state_path)
        return data

    def close(self) -> None:
        """Write the final state and stop listening (at interpreter exit)."""
        if os.getpid() != self.pid:
            return
        with contextlib.suppress(Exception):
            self.persist(self._snapshot())
        with contextlib.suppress(Exception):
            self._server.close()
        with contextlib.suppress(Exception):
            self._sock_path.unlink()

    # scraping

    def _siblings(self) -> Iterator[int]:
        for path in self.dir.glob("*.json"):
            if path.stem.isdigit() and int(path.stem) != self.pid:
                yield int(path.stem)
        for path in self.dir.glob("*.sock"):
            stem = path.stem
            if (
                stem.isdigit()
                and int(stem) != self.pid
                and not (self.dir / f"{stem}.json").exists()
            ):
                yield int(stem)

    def _ask(self, pid: int) -> list[FamilySnapshot] | None:
        """A live sibling's families, or None if it does not answer."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
                conn.settimeout(SIBLING_TIMEOUT)
                conn.connect(str(self.dir / f"{pid}.sock"))
                conn.sendall(b"STATE\n")
                chunks = []
                while chunk := conn.recv(1 << 20):
                    chunks.append(chunk)
            return decode(b"".join(chunks))
        except (OSError, ValueError):
            return None

    def _read_state(self, pid: int) -> list[FamilySnapshot]:
        try:
            return decode((self.dir / f"{pid}.json").read_bytes())
        except (OSError, ValueError):
            return []

    def _fold_dead(self, dead_pids: list[int]) -> list[FamilySnapshot]:
        """Fold gone workers into ``dead.json`` and return its content (under a lock)."""
        with open(self.dir / ".lock", "a+b") as lockfile:
            fcntl.flock(lockfile, fcntl.LOCK_EX)
            dead_path = self.dir / "dead.json"
            try:
                dead = decode(dead_path.read_bytes())
            except (OSError, ValueError):
                dead = []
            folded = False
            for pid in dead_pids:
                if not (self.dir / f"{pid}.json").exists():
                    continue  # another worker folded it first
                dead = merge([], {}, dead + self._read_state(pid))
                folded = True
            if folded:
                tmp = dead_path.with_suffix(".tmp")
                tmp.write_bytes(encode(dead))
                os.replace(tmp, dead_path)
                for pid in dead_pids:
                    for suffix in (".json", ".sock"):
                        with contextlib.suppress(FileNotFoundError):
                            (self.dir / f"{pid}{suffix}").unlink()
            return dead

    def gather(self, local: list[FamilySnapshot]) -> list[FamilySnapshot]:
        """The merged families of every worker, live and dead."""
        self.persist(local)
        live: dict[str, list[FamilySnapshot]] = {str(self.pid): local}
        dead_pids = []
        for pid in set(self._siblings()):
            if not _alive(pid):
                dead_pids.append(pid)
                continue
            families = self._ask(pid)
            live[str(pid)] = families if families is not None else self._read_state(pid)
        dead = self._fold_dead(dead_pids)
        return merge(local, live, dead)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
