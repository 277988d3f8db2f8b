"""Files of an evaluation run: results (JSONL, CSV), summary, timing, Markdown report, plot.

Everything but ``timing.json`` and the report's last section is a function of the inputs
only, so two runs can be compared byte for byte.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from types import SimpleNamespace
from urllib.parse import quote

from assistant.metrics import CUTOFFS, EXPLANATIONS, hit_curve, judged_run, metric_counts
from assistant.types import Passage

MAX_FAILURES = 100  # listed per kind of failure in the report; all are in results.csv
_SNIPPET = 300
_TABLE_KEYS = ("questions", "answerable", "unanswerable",
               *(f"hit@{c}" for c in CUTOFFS), "mrr@10", "ndcg@10", *(f"doc_recall@{c}" for c in CUTOFFS),
               "answer_accuracy", "answer_f1", "phrase_exact", "phrase_f1", "answered", "abstention_accuracy")


def write_outputs(out_dir: Path, summary: dict[str, Any], rows: Sequence[dict[str, Any]],
                  stamp: dict[str, Any], timing: dict[str, Any]) -> dict[str, Path]:
    """Write every file of a run into ``out_dir`` (created if needed); returns name -> path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        "results_jsonl": out_dir / "results.jsonl",
        "results_csv": out_dir / "results.csv",
        "summary": out_dir / "summary.json",
        "timing": out_dir / "timing.json",
        "report": out_dir / "report.md",
        "plot": out_dir / "hit_at_k.png",
    }
    files["results_jsonl"].write_text(results_jsonl(rows), encoding="utf-8")
    files["results_csv"].write_text(results_csv(rows), encoding="utf-8", newline="")
    files["summary"].write_text(_json({"stamp": stamp, "summary": summary}), encoding="utf-8")
    files["timing"].write_text(_json(timing), encoding="utf-8")
    plot_hit_at_k(rows, summary["k"], files["plot"], title=stamp["question_set"]["name"])
    files["report"].write_text(markdown_report(summary, rows, stamp, timing, files["plot"].name), encoding="utf-8")
    return files


def _json(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def results_jsonl(rows: Sequence[dict[str, Any]]) -> str:
    """One JSON object per question and line."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def results_csv(rows: Sequence[dict[str, Any]]) -> str:
    """One row per question: gold, answer, passages (``doc:start-end``) and every metric."""
    extras = sorted({key for row in rows for key in row["extra"]})
    metrics = list(rows[0]["metrics"]) if rows else []
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["id", "question", "answers", "sources", *(f"extra.{e}" for e in extras), "answer",
                     "answer_doc_id", "answer_start", "answer_end", "answer_confidence", "answer_phrase", "passages",
                     "top_passage", *metrics])
    for row in rows:
        answer = row["answer"] or {}
        passages = row["passages"]
        writer.writerow([
            row["id"], row["question"], "|".join(row["answers"]), "|".join(row["sources"]),
            *(_cell(row["extra"].get(e)) for e in extras),
            *(_cell(answer.get(key)) for key in ("text", "doc_id", "start", "end", "confidence")),
            _cell((answer.get("phrase") or {}).get("text")),
            " | ".join(f"{p['doc_id']}:{p['start']}-{p['end']}" for p in passages),
            passages[0]["text"] if passages else "",
            *(_cell(row["metrics"][m]) for m in metrics),
        ])
    return buffer.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list | dict) else str(value)


def plot_hit_at_k(rows: Sequence[dict[str, Any]], k: int, path: Path, *, title: str = "") -> None:
    """A PNG line plot of hit@c for c = 1..k over the answerable questions."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    curve = hit_curve(rows, k)
    figure = Figure(figsize=(6, 4), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    if curve:
        xs, ys = zip(*curve)
        axes.plot(xs, ys, marker="o")
        for x, y in curve:
            if x in CUTOFFS:
                axes.annotate(f"{y:.2f}", (x, y), textcoords="offset points", xytext=(0, 8), ha="center")
    else:
        axes.text(0.5, 0.5, "no answerable questions", ha="center", va="center", transform=axes.transAxes)
    axes.set(xlabel="k (passages)", ylabel="hit@k", ylim=(0, 1.12), xlim=(0.5, k + 0.5),
             title=f"hit@k{' — ' + title if title else ''}")
    axes.set_xticks(range(1, k + 1))
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def metric_table(columns: dict[str, dict[str, Any]]) -> list[str]:
    """Markdown table: one row per summary metric, one column per named summary."""
    names = list(columns)
    lines = ["| metric | " + " | ".join(_text(n) for n in names) + " |", "|---" * (len(names) + 1) + "|"]
    for key in _TABLE_KEYS:
        if all(columns[n].get(key) is None for n in names):
            continue
        lines.append(f"| {key} | " + " | ".join(_fmt(columns[n].get(key)) for n in names) + " |")
    return lines


def explanation_table(summary: dict[str, Any], rows: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown table: what each metric of the summary means and how many questions it is over."""
    counts = metric_counts(rows)
    lines = ["| metric | questions | what it means |", "|---|---|---|"]
    lines += [f"| {key} | {counts[key]} | {EXPLANATIONS[key]} |" for key in _TABLE_KEYS
              if key in counts and summary.get(key) is not None]
    return lines


def write_trec(out_dir: Path, rows: Sequence[dict[str, Any]], tag: str = "assistant") -> dict[str, Path]:
    """``run.trec`` (``qid Q0 docno rank score tag``) and ``qrels.trec`` (``qid 0 docno rel``) of the
    answerable questions, in ``out_dir``; returns name -> path.

    A docno is a retrieved passage, ``DOC_ID:START-END``; the qrels judge every retrieved
    passage as :func:`assistant.metrics.relevant` does, so trec_eval's success@k and
    recip_rank (ir-measures' Success@k and RR@10) give our hit@k and MRR@10. Ids are
    percent-encoded where they hold white space or other characters TREC files cannot carry.
    """
    items = [(_trec_id(row["id"]), SimpleNamespace(answers=row["answers"], sources=row["sources"]),
              [Passage.from_dict(p) for p in row["passages"]]) for row in rows]
    qrels, run = judged_run(items, _docno)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"trec_run": out_dir / "run.trec", "trec_qrels": out_dir / "qrels.trec"}
    files["trec_run"].write_text("".join(
        f"{qid} Q0 {docno} {rank} {score:.6f} {tag}\n"
        for qid, scored in run.items() for rank, (docno, score) in enumerate(scored.items(), start=1)),
        encoding="utf-8")
    # A question with nothing retrieved still counts (as a miss): one placeholder judgement.
    files["trec_qrels"].write_text("".join(
        f"{qid} 0 {docno} {rel}\n" for qid, judged in qrels.items() for docno, rel in (judged or {"none": 0}).items()),
        encoding="utf-8")
    return files


def _trec_id(value: str) -> str:
    return quote(value, safe="/:")


def _docno(passage: Passage) -> str:
    return f"{_trec_id(passage.citation.doc_id)}:{passage.citation.span.start}-{passage.citation.span.end}"


def _text(value: str, limit: int = _SNIPPET) -> str:
    flat = " ".join(value.split())
    flat = flat if len(flat) <= limit else flat[:limit].rstrip() + "…"
    flat = flat.replace("<", "&lt;").replace(">", "&gt;")  # no raw HTML from documents in the report
    return flat.replace("|", "\\|").replace("*", "\\*").replace("_", "\\_")


def failures(rows: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Rows that failed, by kind: retrieval miss, wrong answer, no answer, should have abstained."""
    kinds: dict[str, list[dict[str, Any]]] = {"retrieval miss (no gold passage in the top k)": [],
                                              "wrong answer": [], "no answer given": [],
                                              "answered an unanswerable question": []}
    names = list(kinds)
    for row in rows:
        m = row["metrics"]
        if row["answers"]:
            if m["hit_rank"] is None:
                kinds[names[0]].append(row)
            if m["answered"] and not m["answer_correct"]:
                kinds[names[1]].append(row)
            if m["answered"] == 0:
                kinds[names[2]].append(row)
        elif m["abstained"] == 0:
            kinds[names[3]].append(row)
    return kinds


def _failure_lines(row: dict[str, Any]) -> list[str]:
    gold = " \\| ".join(f'"{_text(a)}"' for a in row["answers"]) or "(unanswerable)"
    sources = ", ".join(row["sources"]) or "–"
    answer = row["answer"]
    given = (f'"{_text(answer["text"])}" ({_text(answer["doc_id"])}, chars {answer["start"]}–{answer["end"]})'
             if answer else "no answer")
    lines = [f"- **{_text(row['id'])}**: {_text(row['question'])}",
             f"  - gold: {gold} (sources: {_text(sources)})", f"  - answer: {given}"]
    if row["passages"]:
        p = row["passages"][0]
        lines.append(f"  - top passage: {_text(p['doc_id'])}, chars {p['start']}–{p['end']}: \"{_text(p['text'])}\"")
    else:
        lines.append("  - top passage: none")
    return lines


def reliability_table(calibration: dict[str, Any]) -> list[str]:
    """Confidence bins of the answers against the share of them that was right, and the ECE."""
    if not calibration["bins"]:
        return ["No question was answered."]
    lines = [f"Expected calibration error over the {calibration['answered']} answers (an answer to an "
             f"unanswerable question counts as wrong): **{calibration['ece']:.4f}**", "",
             "| confidence | answers | mean confidence | share right |", "|---|---|---|---|"]
    lines += [f"| {b['from']:.1f}–{b['to']:.1f} | {b['answers']} | {b['confidence']:.3f} | {b['right']:.3f} |"
              for b in calibration["bins"]]
    return lines


def markdown_report(summary: dict[str, Any], rows: Sequence[dict[str, Any]], stamp: dict[str, Any],
                    timing: dict[str, Any], plot_name: str, *, max_failures: int = MAX_FAILURES) -> str:
    """The human-readable report: stamp, metric tables, plot, failures, then timing."""
    qs, index_stamp = stamp["question_set"], stamp["index"]
    out = [f"# Evaluation of {qs['name']}", "",
           f"- question set: `{qs['name']}` sha256 `{qs['sha256'][:16]}`, {qs['questions']} questions"
           + (f", {len(qs['skipped'])} invalid line(s) skipped" if qs["skipped"] else ""),
           f"- index: version `{index_stamp['version']}`, manifest sha256 `{index_stamp['manifest_sha256'][:16]}`, "
           f"{index_stamp['documents']} documents, {index_stamp['chunks']} chunks",
           f"- model: `{stamp['model']}`; reader: `{stamp['reader']['name']}` ({stamp['reader']['fingerprint']}); "
           f"package {stamp['package_version']}; {stamp['metrics_library']}",
           "- settings: " + ", ".join(f"{k}={v}" for k, v in stamp["settings"].items()), "",
           "## Metrics", "",
           "Retrieval and answer metrics are over answerable questions, abstention over unanswerable "
           "ones; – means the metric does not apply.", ""]
    out += metric_table({"all": summary, **summary["by_prefix"]})
    out += ["", "### What the metrics mean", ""] + explanation_table(summary, rows)
    for name, groups in summary["by_category"].items():
        out += ["", f"### By {_text(name)}", ""] + metric_table(groups)
    if summary["answerable"] and summary["answered"] == 0:
        out += ["", "No answerable question got an answer: answer metrics are zero because no answers were "
                "returned (answer extraction missing or abstaining everywhere)."]
    out += ["", "## Confidence", ""] + reliability_table(summary["calibration"])
    out += ["", "## hit@k", "", f"![hit@k against k]({plot_name})", "", "## Failures", ""]
    for kind, failed in failures(rows).items():
        if kind == "no answer given" and summary["answered"] == 0:
            continue
        out += [f"### {kind}: {len(failed)}", ""] + ([] if failed else ["none"])
        for row in failed[:max_failures]:
            out += _failure_lines(row)
        if len(failed) > max_failures:
            out.append(f"- … and {len(failed) - max_failures} more (see results.csv)")
        out.append("")
    latency = timing["latency_ms"]
    out += ["## Timing (differs between runs; not part of the comparable results)", "",
            f"- started {timing['started_at']}, {timing['seconds']} s in all",
            f"- latency per question: p50 {_fmt(latency['p50'])} ms, p95 {_fmt(latency['p95'])} ms, "
            f"mean {_fmt(latency['mean'])} ms, max {_fmt(latency['max'])} ms", ""]
    return "\n".join(out)


def summary_text(summary: dict[str, Any], timing: dict[str, Any] | None = None) -> str:
    """The summary as aligned ``name value`` lines for the terminal, breakdowns indented."""
    def lines(data: dict[str, Any], indent: str = "") -> list[str]:
        return [f"{indent}{key:20} {_fmt(data[key])}" for key in ("k", *_TABLE_KEYS) if data.get(key) is not None]

    out = lines(summary)
    if summary["calibration"]["ece"] is not None:
        out.append(f"{'calibration error':20} {_fmt(summary['calibration']['ece'])} "
                   f"(ECE over {summary['calibration']['answered']} answers)")
    if timing:
        latency = timing["latency_ms"]
        out.append(f"{'latency p50/p95':20} {_ms(latency['p50'])} / {_ms(latency['p95'])} ms")
    for name, group in summary["by_prefix"].items():
        out += [f"id prefix {name}"] + lines(group, "  ")
    for field_name, groups in summary["by_category"].items():
        for value, group in groups.items():
            out += [f"{field_name} = {value}"] + lines(group, "  ")
    return "\n".join(out)
