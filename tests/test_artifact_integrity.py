"""Nothing lost, nothing silently wrong: the artifact store checks what it hands out, builds one key once
across processes, never replaces a published artifact, and clears the leftovers of dead builders.

Tiny files written by fake builders; the only slow part is starting interpreters that import torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from clear_lightning import artifacts
from clear_lightning.artifacts import MARKER, ArtifactStore
from clear_lightning.errors import ClearConfigError

ROOT = Path(__file__).resolve().parents[1]
KEY = {"model": "tiny", "seed": 0}


def _fake_model(out: Path) -> None:
    (out / "model").mkdir()
    (out / "model" / "model.safetensors").write_bytes(bytes(range(256)) * 8)
    (out / "model" / "config.json").write_text('{"hidden": 4}')


@pytest.fixture
def fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which artifacts this process has verified, as a new process would."""
    monkeypatch.setattr(artifacts, "_verified", {})


def _damaged(store: ArtifactStore) -> ClearConfigError:
    artifacts._verified.clear()
    with pytest.raises(ClearConfigError) as err:
        store.get("original", KEY)
    return err.value


def test_damaged_file_is_refused_with_the_command_that_rebuilds_it(tmp_path: Path, fresh_process) -> None:
    store = ArtifactStore(tmp_path)
    path = store.build("original", KEY, _fake_model, {})
    weights = path / "model" / "model.safetensors"
    original = weights.read_bytes()

    weights.write_bytes(original[:100])  # truncated: caught by the recorded size
    err = _damaged(store)
    first = str(err).splitlines()[0]
    assert "original" in first and str(path) in first and "model/model.safetensors" in first
    assert f"rm -rf {path}" in err.fix and "rerun" in err.fix

    weights.write_bytes(original[:-1] + b"\x00")  # same size, other bytes: caught by the hash
    err = _damaged(store)
    assert "model/model.safetensors" in str(err) and "sha256" in str(err) and "rm -rf" in str(err)

    weights.unlink()  # gone
    assert "model/model.safetensors is missing" in str(_damaged(store))

    weights.write_bytes(original)
    artifacts._verified.clear()
    assert store.get("original", KEY) == path  # the recorded bytes again: accepted


def test_verified_once_per_process_and_old_artifacts_without_digests_accepted(
    tmp_path: Path, fresh_process, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ArtifactStore(tmp_path)
    path = store.build("original", KEY, _fake_model, {})
    artifacts._verified.clear()
    hashed: list[Path] = []
    real = artifacts._sha16
    monkeypatch.setattr(artifacts, "_sha16", lambda p: hashed.append(p) or real(p))
    for _ in range(3):
        assert store.get("original", KEY) == path
    assert len(hashed) == 2  # two recorded files, hashed by the first get only

    meta = json.loads((path / MARKER).read_text())
    del meta["digests"], meta["sizes"]  # as written before digests were recorded
    (path / MARKER).write_text(json.dumps(meta))
    (path / "model" / "model.safetensors").write_bytes(b"anything")
    artifacts._verified.clear()
    assert store.get("original", KEY) == path


def test_unreadable_marker_is_refused(tmp_path: Path, fresh_process) -> None:
    store = ArtifactStore(tmp_path)
    path = store.build("original", KEY, _fake_model, {})
    (path / MARKER).write_text('{"kind": "orig')
    err = _damaged(store)
    assert str(path) in str(err) and "rm -rf" in str(err)


BUILDER = """
import sys, time
from pathlib import Path
from clear_lightning.artifacts import ArtifactStore

root, counter, me, other = map(Path, sys.argv[1:5])
me.touch()
while not other.exists():  # start building together, so the second one meets the first one's lock
    time.sleep(0.01)

def builder(out):
    with counter.open("a") as f:
        f.write("built\\n")
    time.sleep(0.5)
    (out / "w.json").write_text("{}")

print(ArtifactStore(root).build("original", {"a": 1}, builder, {}))
"""


def test_two_processes_building_one_key_build_it_once(tmp_path: Path) -> None:
    counter, a, b = tmp_path / "counter", tmp_path / "ready-a", tmp_path / "ready-b"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILDER, str(tmp_path / "store"), str(counter), str(me), str(other)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for me, other in ((a, b), (b, a))
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, errs) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, errs
    paths = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(paths) == 1 and Path(paths.pop()).joinpath(MARKER).is_file()
    assert counter.read_text() == "built\n"
    assert [p.name for p in (tmp_path / "store" / "original").iterdir()] == [artifacts.digest({"a": 1})]


def test_lock_serialises_holders_and_leaves_no_lock_file(tmp_path: Path) -> None:
    lock, events = tmp_path / "kind" / "abc.lock", []

    def hold(name: str) -> None:
        with artifacts._locked(lock):
            events.append(f"{name} in")
            time.sleep(0.05)
            events.append(f"{name} out")

    threads = [threading.Thread(target=hold, args=(str(i),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(events[i].split()[0] == events[i + 1].split()[0] for i in range(0, len(events), 2))
    assert len(events) == 8 and not lock.exists()


def test_stale_tmp_dirs_of_dead_builders_are_removed_live_ones_kept(tmp_path: Path) -> None:
    kind = tmp_path / "original"
    kind.mkdir()
    dead_pid = subprocess.Popen(["true"])  # a pid that has exited
    dead_pid.wait()

    def tmp(pid: int, host: str = artifacts._HOST) -> Path:
        path = kind / f".0123456789abcdef.tmp-{pid}-{host}-deadbeef"
        path.mkdir()
        (path / "half.safetensors").write_bytes(b"x")
        return path

    stale, live = tmp(dead_pid.pid), tmp(os.getpid())
    other_host = tmp(dead_pid.pid, "00000000")  # another machine's pid says nothing here
    old_style = kind / f".0123456789abcdef.tmp-{time.time_ns()}"  # no pid: left alone
    old_style.mkdir()
    ArtifactStore(tmp_path).build("original", KEY, _fake_model, {})
    assert not stale.exists()
    assert live.exists() and other_host.exists() and old_style.exists()


def test_publishing_onto_an_existing_artifact_keeps_it_untouched(tmp_path: Path, fresh_process) -> None:
    store = ArtifactStore(tmp_path)
    final = store.path("original", KEY)

    def raced(out: Path) -> None:  # another job publishes the same key while this one builds
        final.mkdir(parents=True)
        (final / "w.json").write_text('"theirs"')
        (final / MARKER).write_text(json.dumps({"kind": "original", "key": KEY}))
        (out / "w.json").write_text('"ours"')

    path = store.build("original", KEY, raced, {})
    before = {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in final.iterdir()}
    assert path == final and (final / "w.json").read_text() == '"theirs"'
    assert json.loads((final / MARKER).read_text()) == {"kind": "original", "key": KEY}
    assert [p.name for p in final.parent.iterdir()] == [final.name]  # our tmp is gone, no lock file left
    assert store.get("original", KEY) == final
    assert {p.name: (p.read_text(), p.stat().st_mtime_ns) for p in final.iterdir()} == before


def test_publishing_onto_a_directory_that_is_no_artifact_says_how_to_fix(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    final = store.path("original", KEY)
    final.mkdir(parents=True)
    (final / "leftover").write_text("?")
    with pytest.raises(ClearConfigError) as err:
        store.build("original", KEY, _fake_model, {})
    assert str(final) in str(err.value) and f"rm -rf {final}" in err.value.fix
    assert (final / "leftover").read_text() == "?"  # not deleted for us


DDP = """
import sys
from pathlib import Path
import torch.distributed as dist
from lightning.pytorch.utilities import rank_zero_only
from clear_lightning.artifacts import ArtifactStore

rank, root, counter, init = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
rank_zero_only.rank = rank
dist.init_process_group("gloo", init_method=f"file://{init}", rank=rank, world_size=2)

def builder(out):
    dist.barrier()  # collective work inside the build, as fit is
    with counter.open("a") as f:
        f.write(f"rank{rank}\\n")
    (out / "w.json").write_text("{}")

store = ArtifactStore(root)
print(store.build("original", {"new": 1}, builder, {}))
print(store.build("original", {"built": 1}, builder, {}))  # found by rank 0 under the lock: nobody builds
dist.destroy_process_group()
"""


def test_under_ddp_every_rank_builds_rank_0_publishes_and_a_found_artifact_is_reused(tmp_path: Path) -> None:
    store, counter = ArtifactStore(tmp_path / "store"), tmp_path / "counter"
    built = store.build("original", {"built": 1}, lambda out: (out / "w.json").write_text("{}"), {})
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [str(tmp_path / "store"), str(counter), str(tmp_path / "init")]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DDP, str(rank), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for rank in (0, 1)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (_, errs) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, errs
    new = store.path("original", {"new": 1})
    for out, _ in outs:
        assert out.strip().splitlines()[-2:] == [str(new), str(built)]
    assert sorted(counter.read_text().split()) == ["rank0", "rank1"]  # one build of {"new": 1}, on both ranks
    assert store.get("original", {"new": 1}) == new
