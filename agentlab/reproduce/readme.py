"""Inline committed result tables into README.md: ``python -m agentlab.reproduce.readme``.

README.md holds markers ``<!-- table: PATH -->`` ... ``<!-- /table -->``; the text between them is
replaced by the file at PATH (a table written by ``agentlab reproduce``), so the README only ever
shows numbers that a committed result file holds. A missing file is shown as "not run yet".
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

MARKER = re.compile(r"(<!-- table: (?P<path>\S+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def render(readme: str, root: Path) -> str:
    def repl(m: re.Match) -> str:
        p = root / m.group("path")
        if p.is_file():
            body = p.read_text()
            body = re.sub(r"^# .*\n+", "", body)  # the README section has its own heading
        else:
            body = f"*Not run yet: `{m.group('path')}` is missing.*\n"
        return m.group(1) + body.rstrip() + "\n" + m.group(4)

    return MARKER.sub(repl, readme)


def main(argv: list[str] | None = None) -> int:
    root = Path(__file__).resolve().parents[2]
    path = root / "README.md"
    old = path.read_text()
    new = render(old, root)
    if "--check" in (argv if argv is not None else sys.argv[1:]):
        return int(new != old)
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
