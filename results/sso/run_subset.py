"""Run a subset of the ``sso`` table's runs (algorithms AND tasks), storing results where the table does.

``agentlab reproduce sso --only X`` selects algorithms OR tasks; this runs e.g. only the Hopper DAgger
runs of SSO while other experts are still training. Finished runs are skipped, and
``agentlab reproduce sso --budget small --seeds 3`` afterwards writes the report from the stored runs.

    python results/sso/run_subset.py sso-m1,sso-m10,sso-m100 Hopper-v5-dagger [budget]
    python results/sso/run_subset.py --report [budget]    # write the report from the stored runs only
"""

import sys

import torch

from agentlab.reproduce import get_table
from agentlab.reproduce.runner import LocalBackend, ResultStore, default_out_dir


def report_only(budget: str) -> None:
    """The table's report from whatever runs are stored (marked INCOMPLETE when some are missing)."""
    from agentlab.runs import git_sha

    table = get_table("sso")
    out = default_out_dir("sso", budget)
    store = ResultStore(out)
    specs = table.specs(budget, 3)
    records = [r for r in (store.get(s) for s in specs) if r is not None]
    missing = sorted({(s.task, s.algo) for s in specs if not store.has(s)})
    meta = {"table": "sso", "budget": budget, "seeds": 3, "backend": "local", "git_sha": git_sha(short=True),
            "command": (f"agentlab reproduce sso --budget {budget} --seeds 3" if budget in ("smoke", "small", "full")
                        else f"python results/sso/run_subset.py ALGOS TASKS {budget}"), "runs_total": len(specs),
            "runs_done": len(records), "complete": len(records) == len(specs), "failed": []}
    for p in table.report(records, out, meta):
        print("wrote", p)
    print("missing (task, algo):", missing)


def main() -> None:
    torch.set_num_threads(1)
    if sys.argv[1] == "--report":
        report_only(sys.argv[2] if len(sys.argv) > 2 else "small")
        return
    algos, tasks = sys.argv[1].split(","), sys.argv[2].split(",")
    budget = sys.argv[3] if len(sys.argv) > 3 else "small"
    table = get_table("sso")
    store = ResultStore(default_out_dir("sso", budget))
    specs = [s for s in table.specs(budget, 3) if s.algo in algos and s.task in tasks and not store.has(s)]
    specs.sort(key=lambda s: (s.seed, tasks.index(s.task)))  # seed by seed: partial runs stay balanced
    print(f"{len(specs)} runs", flush=True)

    def ok(rec):
        store.put(rec)
        s = rec["spec"]
        print("done", s["algo"], s["task"], s["seed"], round(rec["wall_s"]), rec["result"]["score"], flush=True)

    def err(spec, e):
        print("FAILED", spec.run_id, e, flush=True)

    LocalBackend(1).run(table.run, specs, ok, err)


if __name__ == "__main__":
    main()
