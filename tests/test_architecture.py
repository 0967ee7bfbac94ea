"""Structure the codebase keeps (docs/architecture.md): one loop, one checkpoint schema, one file lock,
no import cycles, imports that point down the layers. Counted by ``tools/structure.py``."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _counts():
    spec = importlib.util.spec_from_file_location("structure", ROOT / "tools" / "structure.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.count(ROOT)


def test_one_training_loop_one_checkpoint_schema_one_lock():
    c = _counts()
    assert c["training_loops"] == 1, "a training loop outside agentlab.loop.run_loop"
    assert c["checkpoint_schemas"] == 1, "save_checkpoint called outside agentlab.loop.run_loop"
    assert c["file_lock_implementations"] == 1, "a file lock outside agentlab.files.exclusive_lock"


def test_no_import_cycles_and_no_upward_imports():
    c = _counts()
    assert c["import_cycles"] == [], c["import_cycles"]
    assert c["upward_imports"] == [], c["upward_imports"]
