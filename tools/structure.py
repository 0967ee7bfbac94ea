"""Count the structural duplication issue 13 is about, for a source tree (default: this checkout).

    python tools/structure.py [ROOT] [--json]

* loops: training loops = call sites of ``.progress(`` that drive a run (the shared skeleton counts once);
* env-stepping places: ``<env>.step(`` call sites outside wrappers (rollouts, evaluators, collectors);
* checkpoint schemas: call sites of ``save_checkpoint(`` (each writes its own dict layout);
* file locks: modules implementing one (``fcntl.flock`` or ``O_EXCL``);
* import cycles: strongly connected components of the module import graph (function-level imports
  included), and imports that point up a layer (core -> methods, methods -> reproduce/cli).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

#: the layers, lowest first; a module may import its own layer and the ones below (docs/architecture.md)
LAYERS = [
    {"errors", "files", "options", "plotting", "config", "runs", "nn", "loop", "evaluation", "policy", "replay",
     "envs", "seeding", "data.dataset", "data.scores"},       # 0 core (the Dataset type and score tables too)
    {"data", "experts"},                                       # 1 data and expert policies
    {"agents", "models", "optim", "monitors"},                 # 2 methods
    {"training", "data.generators.locomotion", "experts.train", "experts.levels", "experts.cli"},  # 3 things that train
    {"reproduce"},                                             # 4 tables
    {"cli", "demo"},                                           # 5 entry points
]


def layer(mod: str) -> int:
    parts = mod.split(".")[1:]
    if parts and parts[-1] == "cli":
        return len(LAYERS) - 1  # every group's CLI module is an entry point
    for depth in (3, 2, 1):
        key = ".".join(parts[:depth])
        for i, names in enumerate(LAYERS):
            if len(parts) >= depth and key in names:
                return i
    return 0  # agentlab/__init__


def modules(root: Path) -> dict[str, Path]:
    out = {}
    for p in sorted((root / "agentlab").rglob("*.py")):
        rel = p.relative_to(root).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def imports(path: Path, mod: str, known: set[str]) -> set[str]:
    tree = ast.parse(path.read_text())
    pkg = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for n in names:
            while n and n not in known:
                n = n.rsplit(".", 1)[0] if "." in n else ""
            if n and n != mod and not mod.startswith(n + ".") or (n and n != mod and n.startswith("agentlab.") and
                                                                  not mod.startswith(n + ".")):
                if n != mod and not mod.startswith(n + "."):
                    found.add(n)
    return found


def sccs(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return out


def count(root: Path) -> dict:
    mods = modules(root)
    src = {m: p.read_text() for m, p in mods.items()}
    graph = {m: imports(p, m, set(mods)) for m, p in mods.items()}
    # a package's __init__ importing its own submodules is not a cycle between layers
    graph = {m: {n for n in deps if not n.startswith(m + ".")} for m, deps in graph.items()}
    cycles = sccs(graph)
    upward = sorted(f"{m} -> {n}" for m, deps in graph.items() for n in deps if layer(n) > layer(m))
    step_re = re.compile(r"\b(?:self\.)?(?:env|e|group\[i\]|self\.env|venv)\.step\(")
    wrappers = {"agentlab.envs.wrappers", "agentlab.monitors.wrapper"}
    return {
        "training_loops": sum(s.count(".progress(") for m, s in src.items() if m != "agentlab.runs"),
        "env_step_sites": sum(len(step_re.findall(s)) for m, s in src.items() if m not in wrappers),
        "checkpoint_schemas": sum(s.count("save_checkpoint(") for m, s in src.items() if m != "agentlab.runs"),
        "file_lock_implementations": sum(("fcntl.flock(" in s) or ("O_EXCL" in s) for s in src.values()),
        "import_cycles": cycles,
        "upward_imports": upward,
        "largest_experts_module_lines": max((len(s.splitlines()) for m, s in src.items()
                                             if m.startswith("agentlab.experts")), default=0),
    }


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    root = Path(args[0]) if args else Path(__file__).resolve().parent.parent
    res = count(root)
    if "--json" in sys.argv:
        print(json.dumps(res, indent=1))
    else:
        for k, v in res.items():
            print(f"{k}: {len(v) if isinstance(v, list) else v}" + (f"  {v}" if isinstance(v, list) and v else ""))
