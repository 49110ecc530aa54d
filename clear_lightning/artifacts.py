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

MARKER = "artifact.json"


def digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


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
        """Run `builder(tmp_dir)` and publish the result atomically with its key and provenance."""
        final = self.path(kind, key)
        tmp = final.with_name(f".{final.name}.tmp-{time.time_ns()}")
        tmp.mkdir(parents=True)
        try:
            start = time.perf_counter()
            builder(tmp)
            meta = {
                "kind": kind,
                "key": key,
                "seconds": time.perf_counter() - start,
                "provenance": provenance,
            }
            (tmp / MARKER).write_text(json.dumps(meta, indent=2, default=str))
            if (final / MARKER).exists():  # another process (a DDP rank) published it meanwhile: keep theirs
                return final
            if final.exists():  # a stale, unfinished directory; a finished one would have been reused
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
        return final

    @staticmethod
    def metadata(path: Path) -> dict[str, Any]:
        return json.loads((Path(path) / MARKER).read_text())
