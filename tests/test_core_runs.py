"""Run directories: determinism, atomic checkpoints, resume equivalence."""

import csv
import os

import pytest
import torch

from agentlab.errors import UserError
from agentlab.runs import Run, load_checkpoint_file, seed_everything
from agentlab.training import train


def metrics(run_dir):
    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    # wall-clock columns legitimately differ between runs
    return [{k: v for k, v in r.items() if not k.startswith("time/")} for r in rows]


def test_same_seed_same_metrics(tmp_path, pendulum_dataset):
    kw = dict(steps=60, seed=3, dataset=str(pendulum_dataset), log_every=10, device="cpu")
    train("bc", tmp_path / "a", **kw)
    train("bc", tmp_path / "b", **kw)
    train("bc", tmp_path / "c", **{**kw, "seed": 4})
    assert metrics(tmp_path / "a") == metrics(tmp_path / "b")
    assert metrics(tmp_path / "a") != metrics(tmp_path / "c")


def test_resume_matches_uninterrupted(tmp_path, pendulum_dataset):
    kw = dict(seed=1, dataset=str(pendulum_dataset), log_every=10, checkpoint_every=40, device="cpu")
    train("bc", tmp_path / "full", steps=100, **kw)
    # "killed" run: stopped after its checkpoint at step 40 and some un-checkpointed progress
    train("bc", tmp_path / "part", steps=50, **{**kw, "checkpoint_every": 40})
    part = tmp_path / "part"
    state = load_checkpoint_file(part / "model.pt")
    assert state["step"] == 50  # final checkpoint at the end of the shortened run
    train(None, part, steps=100, resume=True)
    assert metrics(tmp_path / "full") == metrics(part)
    full = load_checkpoint_file(tmp_path / "full" / "model.pt")["agent"]
    resumed = load_checkpoint_file(part / "model.pt")["agent"]
    for k in full:
        torch.testing.assert_close(full[k], resumed[k])


def test_checkpoint_is_atomic(tmp_path, monkeypatch):
    run = Run(tmp_path / "r")
    run.write_config({"algo": "bc"})
    run.save_checkpoint({"step": 1, "w": torch.ones(3)})
    good = (tmp_path / "r" / "model.pt").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        run.save_checkpoint({"step": 2, "w": torch.zeros(3)})
    assert (tmp_path / "r" / "model.pt").read_bytes() == good
    assert [p for p in os.listdir(tmp_path / "r") if p.endswith(".tmp")] == []


def test_checkpoint_weights_only_and_rng(tmp_path):
    run = Run(tmp_path / "r")
    run.write_config({"algo": "bc"})
    seed_everything(0)
    run.save_checkpoint({"step": 5})
    a = torch.rand(3)
    run.load_checkpoint()
    b = torch.rand(3)
    torch.testing.assert_close(a, b)


def test_resume_requires_run_dir(tmp_path):
    with pytest.raises(UserError):
        Run(tmp_path / "none", resume=True)


def test_meta_json(tmp_path, pendulum_dataset):
    import json

    train("bc", tmp_path / "r", steps=2, dataset=str(pendulum_dataset), device="cpu")
    meta = json.loads((tmp_path / "r" / "meta.json").read_text())
    assert {"versions", "git_sha", "command"} <= set(meta) and "torch" in meta["versions"]


def _hold_lock_then_write(lock: str, out: str, started: str) -> None:
    import time
    from pathlib import Path

    from agentlab.runs import exclusive_lock

    with exclusive_lock(lock):
        Path(started).touch()
        time.sleep(1.0)
        Path(out).write_text("made")


def test_exclusive_lock_makes_a_second_process_wait(tmp_path):
    import multiprocessing as mp
    import time

    from agentlab.runs import exclusive_lock

    lock, out, started = tmp_path / "x.lock", tmp_path / "x", tmp_path / "started"
    p = mp.get_context("spawn").Process(target=_hold_lock_then_write, args=(str(lock), str(out), str(started)))
    p.start()
    deadline = time.time() + 60
    while not started.exists() and time.time() < deadline:
        time.sleep(0.05)
    assert started.exists()
    with exclusive_lock(lock):  # blocks until the other process has written its file
        assert out.read_text() == "made"
    p.join(10)
    assert p.exitcode == 0
