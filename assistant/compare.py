"""Two evaluation runs side by side, question by question, with paired significance tests.

Binary metrics (hit@k, answer_correct, answered, abstained) are tested with the exact sign
test on the questions that flipped (exact McNemar, ``scipy.stats.binomtest``); graded ones
(rr@10, ndcg@10, doc recall, answer F1) with the Wilcoxon signed-rank test
(``scipy.stats.wilcoxon``). Only questions present in both runs are paired.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from assistant.errors import InputError
from assistant.metrics import CUTOFFS, SUMMARY_OF

ALPHA = 0.05
BINARY = {*(f"hit@{c}" for c in CUTOFFS), "answer_correct", "phrase_exact", "answered", "abstained"}
MAX_LISTED = 20


def load_results(path: str | Path) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """Rows of a results JSONL file (or of ``results.jsonl`` in a run folder) and the run's
    stamp when a ``summary.json`` lies beside it. Raises InputError for anything else."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.jsonl"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read results {path}: {exc}") from exc
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"results {path}: line {number} is not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict) or "id" not in row or not isinstance(row.get("metrics"), dict):
            raise InputError(f"results {path}: line {number} has no id and metrics; give a results file "
                             "written by `assistant eval --out FILE.jsonl` or --report-dir")
        rows.append(row)
    stamp = None
    summary = path.parent / "summary.json"
    if summary.is_file():
        try:
            stamp = json.loads(summary.read_text(encoding="utf-8")).get("stamp")
        except (OSError, ValueError, AttributeError):
            stamp = None
    return rows, stamp


def paired_test(a: Sequence[float], b: Sequence[float], *, binary: bool) -> tuple[str, float]:
    """Name and two-sided p-value of the paired test of ``b`` against ``a``: the exact sign
    test for ``binary`` (0/1) values, else the Wilcoxon signed-rank test."""
    from scipy import stats

    if binary:
        better = sum(y > x for x, y in zip(a, b))
        worse = sum(y < x for x, y in zip(a, b))
        if better + worse == 0:
            return "sign test", 1.0
        return "sign test", float(stats.binomtest(better, better + worse, 0.5).pvalue)
    if all(x == y for x, y in zip(a, b)):
        return "wilcoxon", 1.0
    return "wilcoxon", float(stats.wilcoxon(a, b, zero_method="wilcox").pvalue)


def compare_runs(a_rows: Sequence[dict[str, Any]], b_rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per-metric means of A and B over the shared questions, the delta (B - A), the questions
    that got better or worse, and the paired test's p-value; plus the questions in one run only
    and those whose gold labels differ between the runs."""
    by_id = {row["id"]: row for row in b_rows}
    shared = [(row, by_id[row["id"]]) for row in a_rows if row["id"] in by_id]
    a_ids = {row["id"] for row in a_rows}
    metrics: dict[str, Any] = {}
    for key, name in SUMMARY_OF.items():
        pairs = [(a["id"], a["metrics"].get(key), b["metrics"].get(key)) for a, b in shared]
        pairs = [(qid, x, y) for qid, x, y in pairs if x is not None and y is not None]
        if not pairs:
            continue
        xs, ys = [x for _, x, _ in pairs], [y for _, _, y in pairs]
        test, p_value = paired_test(xs, ys, binary=key in BINARY)
        mean_a, mean_b = sum(xs) / len(xs), sum(ys) / len(ys)
        metrics[name] = {
            "n": len(pairs), "a": round(mean_a, 4), "b": round(mean_b, 4), "delta": round(mean_b - mean_a, 4),
            "test": test, "p_value": float(f"{p_value:.4g}"), "significant": p_value < ALPHA,
            "better": [qid for qid, x, y in pairs if y > x], "worse": [qid for qid, x, y in pairs if y < x],
        }
    return {
        "questions": {
            "shared": len(shared),
            "only_a": [row["id"] for row in a_rows if row["id"] not in by_id],
            "only_b": [row["id"] for row in b_rows if row["id"] not in a_ids],
            "gold_changed": [a["id"] for a, b in shared
                             if (a.get("answers"), a.get("sources")) != (b.get("answers"), b.get("sources"))],
        },
        "metrics": metrics,
    }


def compare_files(a: str | Path, b: str | Path) -> dict[str, Any]:
    """:func:`compare_runs` of two results files, with their paths and stamps, and what differs
    between the runs' stamps (:func:`stamp_differences`)."""
    a_rows, a_stamp = load_results(a)
    b_rows, b_stamp = load_results(b)
    return {"a": {"path": str(a), "stamp": a_stamp}, "b": {"path": str(b), "stamp": b_stamp},
            "differences": stamp_differences(a_stamp, b_stamp), **compare_runs(a_rows, b_rows)}


def stamp_differences(a: dict[str, Any] | None, b: dict[str, Any] | None) -> list[str]:
    """What produced run A and not run B, one line each ("k: 10 -> 3", "reader: reader-v2 ->
    none", "index", "question set"), from the stamps of their ``summary.json``; none when a
    stamp is missing. A delta means what it says only where the runs differ in what is compared."""
    if not a or not b:
        return []
    out = []
    for name, value_a, value_b in (("model", a.get("model"), b.get("model")),
                                   ("reader", _reader(a), _reader(b)),
                                   ("index", _get(a, "index", "manifest_sha256"), _get(b, "index", "manifest_sha256")),
                                   ("question set", _get(a, "question_set", "sha256"), _get(b, "question_set", "sha256"))):
        if value_a != value_b:
            out.append(name if name in ("index", "question set") else f"{name}: {value_a} -> {value_b}")
    settings_a, settings_b = a.get("settings") or {}, b.get("settings") or {}
    for name in sorted((set(settings_a) | set(settings_b)) - {"model", "reader"}):  # said above
        if settings_a.get(name) != settings_b.get(name):
            out.append(f"{name}: {settings_a.get(name)} -> {settings_b.get(name)}")
    return out


def differences_note(comparison: dict[str, Any]) -> str:
    """What the comparison's ``differences`` mean for its deltas, in one sentence."""
    return ("the runs were made differently, so a delta may come from that and not from one change: "
            + "; ".join(comparison["differences"]))


def _get(stamp: dict[str, Any], part: str, key: str) -> Any:
    return (stamp.get(part) or {}).get(key)


def _reader(stamp: dict[str, Any]) -> Any:
    """The reader's name and fingerprint (a retrained reader of the same name differs too)."""
    reader = stamp.get("reader")
    return f"{reader.get('name')} ({reader.get('fingerprint')})" if isinstance(reader, dict) else reader


def compare_text(comparison: dict[str, Any]) -> str:
    """The comparison as plain text for the terminal."""
    q = comparison["questions"]
    out = [f"A: {comparison['a']['path']}", f"B: {comparison['b']['path']}",
           f"{q['shared']} question(s) in both runs"]
    if comparison.get("differences"):
        out.append(f"note: {differences_note(comparison)}")
    for label, key in (("only in A", "only_a"), ("only in B", "only_b"), ("gold labels differ", "gold_changed")):
        if q[key]:
            out.append(f"{len(q[key])} {label}: {', '.join(q[key][:MAX_LISTED])}{' …' if len(q[key]) > MAX_LISTED else ''}")
    out += ["", f"{'metric':22}{'n':>6}{'A':>9}{'B':>9}{'delta':>9}  {'better':>6} {'worse':>6}  test       p-value"]
    for name, m in comparison["metrics"].items():
        flag = " *" if m["significant"] else ""
        out.append(f"{name:22}{m['n']:>6}{m['a']:>9.4f}{m['b']:>9.4f}{m['delta']:>+9.4f}  "
                   f"{len(m['better']):>6} {len(m['worse']):>6}  {m['test']:10} {m['p_value']:.4g}{flag}")
    out.append(f"(* p < {ALPHA}; paired over the questions where the metric applies in both runs)")
    for name, label, ids in flips(comparison):
        more = f" … and {len(ids) - MAX_LISTED} more" if len(ids) > MAX_LISTED else ""
        out.append(f"{name} flipped {label}: {', '.join(ids[:MAX_LISTED])}{more}")
    return "\n".join(out)


def flips(comparison: dict[str, Any]) -> list[tuple[str, str, list[str]]]:
    """(metric, ``0 -> 1`` or ``1 -> 0``, question ids) of every 0/1 metric that some question flipped."""
    out = []
    for name, m in comparison["metrics"].items():
        if m["test"] == "sign test":
            out += [(name, label, ids) for label, ids in (("0 -> 1", m["better"]), ("1 -> 0", m["worse"])) if ids]
    return out
