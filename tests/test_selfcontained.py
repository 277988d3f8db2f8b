"""The repository is self-contained: nothing it runs, tests or benchmarks reads a folder beside it.

The development sets live under eval/ and the seed corpus under corpus/; a clone has nothing next
to it, so a path into the team's folder beside the repository (however it is spelled) would only
work on the machine it was written on.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCANNED = ("assistant", "tests", "bench", "app.py", "Makefile", "pyproject.toml")

# A path into the folder beside the repository (named SIBLING), in any of the ways it was
# written: relative from the parent, absolute under /work, a joined path component (with `/`
# on either side, or os.path.join) or a string starting with the name and a slash. A dict key
# of that name or the ordinary word ("shared by", "a shared machine") does not match.
SIBLING = "shared"
OUTSIDE = re.compile(
    rf"""\.\.[/\\]{SIBLING}\b"""
    rf"""|/work/{SIBLING}\b"""
    rf"""|/\s*(["']){SIBLING}\1"""
    rf"""|(["']){SIBLING}\2\s*/"""
    rf"""|join\([^)]*(["']){SIBLING}\3"""
    rf"""|(["']){SIBLING}[/\\]""")


def _files() -> list[Path]:
    out = []
    for name in SCANNED:
        path = REPO / name
        if path.is_file():
            out.append(path)
        elif path.is_dir():
            out.extend(p for p in sorted(path.rglob("*"))
                       if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc"))
    return [p for p in out if p.resolve() != Path(__file__).resolve()]


def _hits(text: str) -> list[str]:
    return [m.group(0) for m in OUTSIDE.finditer(text)]


def test_the_pattern_is_precise() -> None:
    up, work = "..", "/work"
    for bad in (f'ROOT.parent / "{SIBLING}" / "eval"', f"REPO.parent / '{SIBLING}'", f'"{SIBLING}" / "eval"',
                f"--corpus {up}/{SIBLING}/eval/squad-sample/corpus", f"{work}/{SIBLING}/seeds",
                f'os.path.join(root, "..", "{SIBLING}")', f'"{SIBLING}/seeds is missing"'):
        assert _hits(bad), bad
    for fine in ('{"shared": 12, "only_a": []}', "q['shared']", "Fixtures shared by the app's tests",
                 "a two-core machine shared with other work", "shared_index", "SHARED_STATE = 1"):
        assert not _hits(fine), fine


def test_nothing_reads_a_folder_beside_the_repository() -> None:
    files = _files()
    assert len(files) > 20 and any(p.name == "conftest.py" for p in files)
    found = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # binary (screenshots, indexes): no paths to check
        for number, line in enumerate(text.splitlines(), start=1):
            if _hits(line):
                found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "paths outside the repository (use eval/ or corpus/):\n" + "\n".join(found)


def test_the_development_sets_are_in_the_repository() -> None:
    for path in ("eval/README.md", "eval/seed/questions.jsonl", "eval/seed/quotes.jsonl", "eval/seed/README.md",
                 "eval/seed/LICENSE.txt", "eval/squad-sample/questions.jsonl", "eval/squad-sample/README.md",
                 "eval/squad-sample/LICENSE.txt", "eval/selqa-dev/questions.jsonl", "eval/selqa-dev/README.md",
                 "eval/selqa-dev/LICENSE.txt"):
        assert (REPO / path).is_file(), path
    assert len(list((REPO / "eval" / "squad-sample" / "corpus").glob("*.txt"))) == 7
    assert len(list((REPO / "eval" / "selqa-dev" / "corpus").glob("*.txt"))) == 244
