"""Per-question metric values and their aggregation into a summary.

Every metric is first a per-question value (``None`` where it does not apply, e.g. hit@1 of
an unanswerable question) and a summary figure is the mean of the values that apply, so the
same code scores a whole run, a category of questions or one side of a comparison.

Relevance comes from the gold labels, never from chunk ids: a passage is relevant when it
comes from a gold source document (any document when the question names none) and contains
a gold answer string, both normalised with :func:`normalize_answer`. MRR@10 and nDCG@10 are
computed by ``ir-measures`` (pytrec_eval) over that binary relevance of the retrieved
passages, so the ideal ranking of nDCG is the relevant passages first.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import ir_measures
import numpy as np
from ir_measures import RR, nDCG

from assistant.textnorm import QUOTE_TABLE
from assistant.types import Answer, Passage

CUTOFFS = (1, 3, 5, 10)
_QUOTES = QUOTE_TABLE  # the quote checker's table: both straighten the same marks
_ARTICLES = {"a", "an", "the"}
_PREFIX = re.compile(r"^([A-Za-z]+-)")
RANKING_CUTOFF = 10  # of mrr@10 and ndcg@10
MAX_CATEGORY_VALUES = 50  # an extra field with more distinct values is a note, not a category

# Per-question key -> summary key. The summary figure is the mean over the questions where
# the per-question value is not None.
SUMMARY_OF = {
    **{f"hit@{c}": f"hit@{c}" for c in CUTOFFS},
    "rr@10": "mrr@10",
    "ndcg@10": "ndcg@10",
    **{f"doc_recall@{c}": f"doc_recall@{c}" for c in CUTOFFS},
    "answer_correct": "answer_accuracy",
    "answer_f1": "answer_f1",
    "phrase_exact": "phrase_exact",
    "phrase_f1": "phrase_f1",
    "answered": "answered",
    "abstained": "abstention_accuracy",
}


# What each summary figure means, in one line (the app's metrics table, report.md).
EXPLANATIONS = {
    "questions": "questions in the set",
    "answerable": "questions with a gold answer",
    "unanswerable": "questions with no gold answer: the assistant should decline them",
    "k": "passages retrieved per question",
    **{f"hit@{c}": f"share of answerable questions with a relevant passage (from a gold source, holding a gold "
                   f"answer) among the top {c}" for c in CUTOFFS},
    "mrr@10": "mean of 1 / rank of the first relevant passage in the top 10 (0 when there is none)",
    "ndcg@10": "gain of the relevant passages in the top 10, discounted by rank, against all of them first",
    **{f"doc_recall@{c}": f"share of the gold source documents among the documents of the top {c} passages"
       for c in CUTOFFS},
    "answer_accuracy": "share of answerable questions whose answer sentence holds a gold answer (no answer: wrong)",
    "answer_f1": "word overlap (F1) of the answer sentence with the best gold answer, SQuAD style",
    "phrase_exact": "share of the reader's answer phrases with the same words as a gold answer",
    "phrase_f1": "word overlap (F1) of the reader's answer phrase with the best gold answer",
    "answered": "share of answerable questions that got an answer rather than a refusal",
    "abstention_accuracy": "share of unanswerable questions the assistant declined to answer",
    "ece": "expected calibration error: mean gap between confidence and share right over the answers (0 is best)",
}


class Gold(Protocol):
    """What the metrics need of a question: its gold answers and source document ids."""

    answers: list[str]
    sources: list[str]


def normalize_answer(text: str) -> str:
    """Case-folded, typographic quotes made straight (:data:`assistant.textnorm.QUOTE_MARKS`),
    white space collapsed."""
    return " ".join(text.translate(_QUOTES).casefold().split())


def relevant(gold: Gold, passage: Passage) -> bool:
    """Whether ``passage`` comes from a gold source and contains a gold answer string."""
    if gold.sources and passage.citation.doc_id not in gold.sources:
        return False
    text = normalize_answer(passage.citation.text)
    return any(normalize_answer(a) in text for a in gold.answers)


def first_hit(gold: Gold, passages: Iterable[Passage]) -> int | None:
    """Rank of the first relevant passage (see :func:`relevant`), or None."""
    return next((p.rank for p in passages if relevant(gold, p)), None)


def tokens(text: str) -> list[str]:
    """Words of ``text`` for token-F1, SQuAD style: normalised, no punctuation, no articles."""
    return [t for t in re.findall(r"\w+", normalize_answer(text)) if t not in _ARTICLES]


def token_f1(prediction: str, gold: str) -> float:
    """Harmonic mean of token precision and recall of ``prediction`` against ``gold``."""
    predicted, expected = tokens(prediction), tokens(gold)
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def answer_metrics(gold: Gold, answer: Answer | None) -> dict[str, int | float | None]:
    """``answer_correct`` (a gold string in the answer text), ``answer_f1`` (best gold answer),
    ``answered`` for answerable questions; ``abstained`` for unanswerable ones.

    ``phrase_exact`` and ``phrase_f1`` score the reader's answer phrase SQuAD-style (same
    words after normalising; token F1) against the best gold answer, for the answers to
    answerable questions that carry a phrase (None otherwise).
    """
    none = {"phrase_exact": None, "phrase_f1": None}
    if not gold.answers:
        return {"answer_correct": None, "answer_f1": None, "answered": None, "abstained": int(answer is None)} | none
    if answer is None:
        return {"answer_correct": 0, "answer_f1": 0.0, "answered": 0, "abstained": None} | none
    text = normalize_answer(answer.citation.text)
    phrase = answer.phrase.text if answer.phrase else None
    return {
        "answer_correct": int(any(normalize_answer(a) in text for a in gold.answers)),
        "answer_f1": round(max(token_f1(answer.citation.text, a) for a in gold.answers), 6),
        "phrase_exact": None if phrase is None else int(any(tokens(phrase) == tokens(a) for a in gold.answers)),
        "phrase_f1": None if phrase is None else round(max(token_f1(phrase, a) for a in gold.answers), 6),
        "answered": 1,
        "abstained": None,
    }


def retrieval_metrics(gold: Gold, passages: Sequence[Passage], k: int) -> dict[str, int | float | None]:
    """hit rank, hit@c and document recall@c for cutoffs up to ``k``; None when unanswerable.

    ``doc_recall@c`` is the share of the gold sources among the documents of the top ``c``
    passages (None when the question names no source). Cutoffs above ``k`` are None.
    """
    values: dict[str, int | float | None] = {"hit_rank": None}
    values |= {f"hit@{c}": None for c in CUTOFFS} | {f"doc_recall@{c}": None for c in CUTOFFS}
    if not gold.answers:
        return values
    rank = first_hit(gold, passages)
    values["hit_rank"] = rank
    for cutoff in CUTOFFS:
        if cutoff > k:
            continue
        values[f"hit@{cutoff}"] = int(rank is not None and rank <= cutoff)
        if gold.sources:
            found = {p.citation.doc_id for p in passages if p.rank <= cutoff}
            values[f"doc_recall@{cutoff}"] = round(len(found & set(gold.sources)) / len(set(gold.sources)), 6)
    return values


def _rank_id(passage: Passage) -> str:
    return str(passage.rank)


def judged_run(items: Iterable[tuple[str, Gold, Sequence[Passage]]], docno: Callable[[Passage], str] = _rank_id,
               ) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """(qrels, run) of the answerable items ``(qid, gold, passages)``, as ir-measures takes them.

    The qrels judge every retrieved passage (1 when :func:`relevant`, else 0), so hit@k is
    Success@k and MRR@10 is RR@10 over them; the run scores a passage 1/rank (pytrec_eval
    orders by score, so the order is ours). ``docno`` names a passage (default: its rank).
    """
    qrels: dict[str, dict[str, int]] = {}
    run: dict[str, dict[str, float]] = {}
    for qid, gold, passages in items:
        if gold.answers:
            qrels[qid] = {docno(p): int(relevant(gold, p)) for p in passages}
            run[qid] = {docno(p): 1.0 / p.rank for p in passages}
    return qrels, run


def ranking_metrics(items: Sequence[tuple[Gold, Sequence[Passage]]], k: int) -> list[dict[str, float | None]]:
    """``rr@10`` and ``ndcg@10`` per item, computed by ir-measures; None when unanswerable, and
    None for all when fewer than 10 passages were asked for (``k``), as for hit@c above ``k``:
    the top 10 was not retrieved, and nDCG's ideal ranking over fewer judged passages would
    score a shorter list higher."""
    qrels, run = judged_run((str(number), gold, passages) for number, (gold, passages) in enumerate(items))
    values: dict[str, dict[str, float]] = {qid: {"rr@10": 0.0, "ndcg@10": 0.0} for qid in qrels}
    if k < RANKING_CUTOFF:
        values = {}
    elif qrels:
        for metric in ir_measures.iter_calc([RR @ 10, nDCG @ 10], qrels, run):
            name = "rr@10" if metric.measure == RR @ 10 else "ndcg@10"
            values[metric.query_id][name] = round(float(metric.value), 6)
    return [values.get(str(n), {"rr@10": None, "ndcg@10": None}) for n in range(len(items))]


def aggregate(rows: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    """The summary of per-question rows (each with ``answers`` and ``metrics``).

    Keys: ``questions``, ``answerable``, ``unanswerable``, ``k``, then every summary metric
    of :data:`SUMMARY_OF` in that order, each rounded to 4 places or None when no question
    of the rows has a value for it.
    """
    answerable = sum(bool(row["answers"]) for row in rows)
    summary: dict[str, Any] = {"questions": len(rows), "answerable": answerable,
                               "unanswerable": len(rows) - answerable, "k": k}
    for key, name in SUMMARY_OF.items():
        values = [row["metrics"][key] for row in rows if row["metrics"].get(key) is not None]
        summary[name] = round(sum(values) / len(values), 4) if values else None
    return summary


def metric_counts(rows: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many questions of ``rows`` each summary metric is the mean over (those where it applies)."""
    return {name: sum(row["metrics"].get(key) is not None for row in rows) for key, name in SUMMARY_OF.items()}


def hit_curve(rows: Sequence[dict[str, Any]], k: int) -> list[tuple[int, float]]:
    """(c, hit@c) for every c from 1 to ``k`` over the answerable rows, for the plot."""
    ranks = [row["metrics"]["hit_rank"] for row in rows if row["answers"]]
    if not ranks:
        return []
    return [(c, round(sum(r is not None and r <= c for r in ranks) / len(ranks), 4)) for c in range(1, k + 1)]


def summarize_rows(rows: Sequence[dict[str, Any]], k: int) -> dict[str, Any]:
    """The overall summary with ``by_prefix`` (id prefixes such as ``ooc-``) and
    ``by_category`` (each scalar extra field with at most 50 values) breakdowns."""
    summary = aggregate(rows, k)
    summary["calibration"] = reliability(rows)
    prefixes: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        match = _PREFIX.match(row["id"])
        if match:
            prefixes.setdefault(match.group(1), []).append(row)
    summary["by_prefix"] = {name: aggregate(group, k) for name, group in sorted(prefixes.items())}
    summary["by_category"] = {}
    for name in sorted({key for row in rows for key in row["extra"]}):
        groups: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            value = row["extra"].get(name)
            if value is None:
                continue
            if not isinstance(value, str | int | float | bool):
                groups = {}
                break
            groups.setdefault(str(value), []).append(row)
        if 0 < len(groups) <= MAX_CATEGORY_VALUES:
            summary["by_category"][name] = {value: aggregate(group, k) for value, group in sorted(groups.items())}
    return summary


def reliability(rows: Sequence[dict[str, Any]], bins: int = 10) -> dict[str, Any]:
    """How far the answers' confidence is from the share of them that is right.

    Over the answered questions (an answer to an unanswerable question is wrong), the
    confidences are put in ``bins`` equal-width bins; each bin gives its count, mean
    confidence and share right, and ``ece`` is the count-weighted mean gap (expected
    calibration error). None when nothing was answered.
    """
    pairs = [(row["answer"]["confidence"], bool(row["answers"]) and row["metrics"]["answer_correct"] == 1)
             for row in rows if row["answer"] is not None]
    if not pairs:
        return {"answered": 0, "ece": None, "bins": []}
    table, ece = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = [(c, r) for c, r in pairs if lo <= c < hi or (b == bins - 1 and c == 1.0)]
        if not inside:
            continue
        confidence = sum(c for c, _ in inside) / len(inside)
        right = sum(r for _, r in inside) / len(inside)
        ece += len(inside) / len(pairs) * abs(confidence - right)
        table.append({"from": lo, "to": hi, "answers": len(inside), "confidence": round(confidence, 4),
                      "right": round(right, 4)})
    return {"answered": len(pairs), "ece": round(ece, 4), "bins": table}


def latency_summary(latencies: Sequence[float]) -> dict[str, float | None]:
    """p50, p95, mean and max of per-question latencies, in milliseconds."""
    if not latencies:
        return {"p50": None, "p95": None, "mean": None, "max": None}
    ms = np.asarray(latencies) * 1000
    return {"p50": round(float(np.percentile(ms, 50)), 2), "p95": round(float(np.percentile(ms, 95)), 2),
            "mean": round(float(ms.mean()), 2), "max": round(float(ms.max()), 2)}
