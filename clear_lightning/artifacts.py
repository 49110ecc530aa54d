"""A content-addressed store: each artifact's directory is named by a hash of what determines it.

A changed recipe, model, data revision, split or seed gives a new key and so a rebuild; the same
ones give the same directory and a reuse. Builds write to a temporary directory and are renamed into
place only when complete, so an interrupted build is never mistaken for a finished one.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_only

MARKER = "artifact.json"


def is_main_process() -> bool:
    """Rank 0 under DDP/FSDP (every rank runs the same program; artifacts publish once, run files are
    written once), and always True in a single process."""
    return rank_zero_only.rank == 0


def _world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def file_digests(
    directory: Path, patterns: tuple[str, ...] = ("*.safetensors", "*.json", "*.model")
) -> dict[str, str]:
    """sha256 (16 hex) of the weights, tokenizer and config files under a directory, by relative path."""
    out = {}
    for pattern in patterns:
        for path in sorted(Path(directory).rglob(pattern)):
            if path.name != MARKER and path.is_file():
                out[str(path.relative_to(directory))] = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return dict(sorted(out.items()))


class ArtifactStore:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, kind: str, key: dict[str, Any]) -> Path:
        return self.root / kind / digest(key)

    def get(self, kind: str, key: dict[str, Any]) -> Path | None:
        """The finished artifact's directory, or None."""
        path = self.path(kind, key)
        return path if (path / MARKER).exists() else None

    def build(
        self, kind: str, key: dict[str, Any], builder: Callable[[Path], None], provenance: dict[str, Any]
    ) -> Path:
        """Run `builder(tmp_dir)` and publish the result atomically with its key and provenance.

        Under several processes (DDP/FSDP) every rank runs the builder, which holds collective work
        (fit, test); rank 0 alone publishes (some writers, like `save_pretrained`, write on rank 0 only)
        and the others wait for it at a barrier.
        """
        final = self.path(kind, key)
        tmp = final.with_name(f".{final.name}.tmp-{time.time_ns()}")
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
    def _publish(
        tmp: Path, final: Path, kind: str, key: dict[str, Any], seconds: float, provenance: dict[str, Any]
    ) -> None:
        # the key names what determines the artifact; the digests say what it holds, so two builds of one key
        # (other machine, other library version) can be compared byte for byte
        digests = file_digests(tmp)
        content = hashlib.sha256(json.dumps(digests, sort_keys=True).encode()).hexdigest()[:16]
        meta = {
            "kind": kind,
            "key": key,
            "seconds": seconds,
            "content_digest": content,
            "digests": digests,
            "provenance": provenance,
        }
        (tmp / MARKER).write_text(json.dumps(meta, indent=2, default=str))
        if (final / MARKER).exists():  # another job published the same artifact meanwhile: keep theirs
            return
        if final.exists():  # a stale, unfinished directory; a finished one would have been reused
            shutil.rmtree(final)
        tmp.rename(final)

    @staticmethod
    def metadata(path: Path) -> dict[str, Any]:
        return json.loads((Path(path) / MARKER).read_text())
