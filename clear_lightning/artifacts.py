"""A content-addressed store: each artifact's directory is named by a hash of what determines it.

A changed recipe, model, data revision, split or seed gives a new key and so a rebuild; the same
ones give the same directory and a reuse. Builds write to a temporary directory and are renamed into
place only when complete, so an interrupted build is never mistaken for a finished one. A found artifact
is checked against the digests recorded at its build, two jobs wanting one artifact build it once (a file
lock), and a build never deletes a published artifact.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_only

from .errors import ClearConfigError

MARKER = "artifact.json"
# tmp dirs are `.<digest>.tmp-<pid>-<host>-<random>`: pid + host tell a dead builder's from a live build's
_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]
_TMP = re.compile(r"\.tmp-(\d+)-([0-9a-f]{8})-[0-9a-f]+$")
_verified: dict[Path, int] = {}  # artifact dir -> artifact.json mtime_ns, checked once per process


def is_main_process() -> bool:
    """Rank 0 under DDP/FSDP (every rank runs the same program; artifacts publish once, run files are
    written once), and always True in a single process."""
    return rank_zero_only.rank == 0


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _sha16(path: Path) -> str:
    """sha256 (16 hex) read in chunks: weights of a 7B model do not fit in memory twice."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()[:16]


def file_digests(
    directory: Path, patterns: tuple[str, ...] = ("*.safetensors", "*.json", "*.model")
) -> dict[str, str]:
    """sha256 (16 hex) of the weights, tokenizer and config files under a directory, by relative path."""
    out = {}
    for pattern in patterns:
        for path in sorted(Path(directory).rglob(pattern)):
            if path.name != MARKER and path.is_file():
                out[str(path.relative_to(directory))] = _sha16(path)
    return dict(sorted(out.items()))


def _rebuild_fix(path: Path) -> str:
    return f"delete it with `rm -rf {shlex.quote(str(path))}` and rerun; the artifact is rebuilt"


def _pid_alive(pid: int) -> bool:
    try:
        with suppress(PermissionError):  # alive, owned by another user
            os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive flock on `path`; the file is removed on release so kind dirs list only artifacts.

    Removing a lock file is safe only because a waiter that opened the removed inode notices: once it
    holds the lock it checks that `path` still names that inode, and otherwise retries on the new file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            held, now = os.fstat(fd), os.stat(path)
            if (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino):
                break
        except FileNotFoundError:  # removed by the holder we waited for: lock the next file
            pass
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        os.close(fd)  # releases the lock


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, kind: str, key: dict[str, Any]) -> Path:
        return self.root / kind / digest(key)

    def get(self, kind: str, key: dict[str, Any]) -> Path | None:
        """The finished artifact's directory, or None; a damaged one raises instead of being used."""
        path = self.path(kind, key)
        if not (path / MARKER).exists():
            return None
        self.verify(kind, path)
        return path

    @staticmethod
    def verify(kind: str, path: Path) -> None:
        """Check every recorded file against its digest, once per process and artifact.json version.

        A truncated copy or an edited weight file would otherwise be evaluated as if it were the model the
        key names, and the numbers would be silently wrong. Artifacts built before digests were recorded
        carry none and are accepted as they always were.
        """
        marker = path / MARKER
        mtime = marker.stat().st_mtime_ns
        if _verified.get(path) == mtime:
            return
        try:
            meta = json.loads(marker.read_text())
        except (OSError, ValueError) as err:
            raise ClearConfigError(
                f"the {kind} artifact {path} has an unreadable {MARKER}: {err}", _rebuild_fix(path)
            ) from err
        sizes = meta.get("sizes", {})
        for rel, expected in (meta.get("digests") or {}).items():
            file = path / rel
            if not file.is_file():
                problem = f"{rel} is missing"
            elif rel in sizes and file.stat().st_size != sizes[rel]:  # cheap test first: truncation
                problem = f"{rel} has {file.stat().st_size} bytes, {sizes[rel]} were recorded"
            elif (actual := _sha16(file)) != expected:
                problem = f"{rel} has sha256 {actual}, {expected} was recorded"
            else:
                continue
            raise ClearConfigError(f"the {kind} artifact {path} is damaged: {problem}", _rebuild_fix(path))
        _verified[path] = mtime

    def build(
        self, kind: str, key: dict[str, Any], builder: Callable[[Path], None], provenance: dict[str, Any]
    ) -> Path:
        """Run `builder(tmp_dir)` and publish the result atomically with its key and provenance.

        Under several processes (DDP/FSDP) every rank runs the builder, which holds collective work
        (fit, test); rank 0 alone publishes (some writers, like `save_pretrained`, write on rank 0 only)
        and the others wait for it at a barrier. Rank 0 alone takes the lock that keeps two jobs from
        building one key, and tells the other ranks whether it found the artifact built meanwhile.
        """
        final = self.path(kind, key)
        if not is_main_process():
            return self._agree(None) or self._build(kind, key, builder, provenance)
        with _locked(final.with_name(f"{final.name}.lock")):
            if found := self._agree(self.get(kind, key)):  # another job may have published while we waited
                return found
            self._sweep(final.parent)
            return self._build(kind, key, builder, provenance)

    @staticmethod
    def _agree(found: Path | None) -> Path | None:
        """Rank 0's finding, on every rank: all build or all reuse, or the collectives would hang."""
        if _world_size() == 1:
            return found
        box = [str(found) if found is not None else None]
        dist.broadcast_object_list(box, src=0)
        return Path(box[0]) if box[0] is not None else None

    def _build(self, kind: str, key: dict, builder: Callable[[Path], None], provenance: dict) -> Path:
        final = self.path(kind, key)
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}-{_HOST}-{os.urandom(4).hex()}")
        tmp.mkdir(parents=True)
        try:
            start = time.perf_counter()
            builder(tmp)  # may launch or join a process group (Lightning's DDP starts in the first fit)
            if is_main_process():
                self._publish(tmp, final, kind, key, time.perf_counter() - start, provenance)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        if _world_size() > 1:
            dist.barrier()  # the other ranks read the artifact only once rank 0 has published it
        return final

    @staticmethod
    def _sweep(kind_dir: Path) -> None:
        """Remove the tmp dirs of builders on this host that died (killed, out of memory) mid-build.

        A dir whose pid is alive is a build in progress (or, after pid reuse, kept by caution). Old-style
        names (`.tmp-<time_ns>`, no pid) are left alone: their age does not prove their builder dead.
        """
        for tmp in kind_dir.glob(".*.tmp-*"):
            m = _TMP.search(tmp.name)
            if m and m.group(2) == _HOST and not _pid_alive(int(m.group(1))):
                shutil.rmtree(tmp, ignore_errors=True)  # another job may be sweeping it too

    @staticmethod
    def _publish(
        tmp: Path, final: Path, kind: str, key: dict[str, Any], seconds: float, provenance: dict[str, Any]
    ) -> None:
        # the key names what determines the artifact; the digests say what it holds, so two builds of one key
        # (other machine, other library version) can be compared byte for byte, and a load can check them
        digests = file_digests(tmp)
        content = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()[:16]
        meta = {
            "kind": kind,
            "key": key,
            "seconds": seconds,
            "content_digest": content,
            "digests": digests,
            "sizes": {rel: (tmp / rel).stat().st_size for rel in digests},
            "provenance": provenance,
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=2, default=str))
        try:  # atomic, and fails on a non-empty `final`: a published artifact is never replaced
            os.rename(tmp, final)
        except OSError:
            if (final / MARKER).exists():
                return  # another job published the same artifact: keep theirs; build() removes our tmp
            if not final.exists():
                raise
            raise ClearConfigError(
                f"{final} exists but holds no finished {kind} artifact ({MARKER} is missing)",
                _rebuild_fix(final),
            ) from None
        _verified[final] = (final / MARKER).stat().st_mtime_ns  # digests just computed from these bytes

    @staticmethod
    def metadata(path: Path) -> dict[str, Any]:
        return json.loads((Path(path) / MARKER).read_text())
