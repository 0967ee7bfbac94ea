"""Shared test set-up: one torch thread, quiet progress bars, a private dataset directory."""

import os

os.environ.setdefault("AGENTLAB_PROGRESS", "0")
os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh ``$AGENTLAB_DATA`` for the test."""
    d = tmp_path / "datasets"
    d.mkdir()
    monkeypatch.setenv("AGENTLAB_DATA", str(d))
    return d
