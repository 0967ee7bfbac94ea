"""Every ```python example in docs/ and README.md runs (in a temp dir with a small dataset)."""

import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


@pytest.mark.parametrize("doc", [d for d in DOCS if BLOCK.search(d.read_text())], ids=lambda p: p.name)
def test_doc_examples_run(doc, tmp_path, monkeypatch, pendulum_dataset):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AGENTLAB_DATA", str(tmp_path / "datasets"))
    from agentlab.training import train

    run_dir = tmp_path / "runs" / "docs-fixture"
    train("bc", run_dir, steps=5, dataset=str(pendulum_dataset), device="cpu")
    namespace = {"DATASET": str(pendulum_dataset), "OBS": np.zeros(3, np.float32), "RUN_DIR": str(run_dir),
                 "__name__": "__docs__"}
    for i, code in enumerate(BLOCK.findall(doc.read_text())):
        exec(compile(code, f"{doc.name}[{i}]", "exec"), namespace)  # noqa: S102 - executing our own docs
