"""Question sets, per-question results and standard retrieval metrics."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from assistant.errors import InputError
from assistant.types import Passage

CUTOFFS = (1, 3, 5, 10)
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'",
                         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u201f": '"', "\u2033": '"'})


@dataclass(frozen=True)
class Question:
    """One item of a question set; no ``answers`` means the corpus does not answer it."""

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def normalize(text: str) -> str:
    """Case-folded, typographic quotes made straight, white space collapsed."""
    return " ".join(text.translate(_QUOTES).casefold().split())


def load_questions(path: Path) -> list[Question]:
    """Read a JSONL question set; every problem is reported with its line number.

    Raises InputError listing the bad lines; nothing is returned until the file is right.
    """
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read question set {path}: {exc}") from exc
    questions, problems, seen = [], [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: not valid JSON ({exc.msg})")
            continue
        if not isinstance(item, dict):
            problems.append(f"line {number}: expected a JSON object")
            continue
        qid, text = item.get("id"), item.get("question")
        answers, sources = item.get("answers", []), item.get("sources", [])
        if not isinstance(qid, str | int) or str(qid) == "":
            problems.append(f"line {number}: missing \"id\"")
        elif str(qid) in seen:
            problems.append(f"line {number}: duplicate id {qid!r}")
        if not isinstance(text, str) or not text.strip():
            problems.append(f"line {number}: empty or missing \"question\"")
        if not _strings(answers) or not _strings(sources):
            problems.append(f"line {number}: \"answers\" and \"sources\" must be lists of strings")
        if problems and problems[-1].startswith(f"line {number}:"):
            continue
        seen.add(str(qid))
        questions.append(Question(str(qid), text.strip(), list(answers), list(sources)))
    if problems:
        raise InputError(f"question set {path} has {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    if not questions:
        raise InputError(f"question set {path} has no questions")
    return questions


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def first_hit(question: Question, passages: Iterable[Passage]) -> int | None:
    """Rank of the first passage from a gold source that contains a gold answer, or None."""
    golds = [normalize(a) for a in question.answers]
    for passage in passages:
        if question.sources and passage.doc_id not in question.sources:
            continue
        text = normalize(passage.text)
        if any(g in text for g in golds):
            return passage.rank
    return None


def summarize(questions: list[Question], ranks: list[int | None]) -> dict[str, Any]:
    """hit@k and MRR@10 over the answerable questions."""
    answerable = [r for q, r in zip(questions, ranks) if q.answerable]
    n = len(answerable)
    summary: dict[str, Any] = {"questions": len(questions), "answerable": n}
    for cutoff in CUTOFFS:
        summary[f"hit@{cutoff}"] = round(sum(r is not None and r <= cutoff for r in answerable) / n, 4) if n else None
    summary["mrr@10"] = round(sum(1 / r for r in answerable if r is not None and r <= 10) / n, 4) if n else None
    return summary


def run(questions: list[Question], ask: Callable[[list[Question]], list[Any]], *, progress: bool = False,
        batch: int = 64) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Answer every question (``ask`` takes a batch) and score the results.

    Returns one result dict per question and the summary metrics.
    """
    results, ranks = [], []
    with tqdm(total=len(questions), desc="Evaluating", unit="question", disable=not progress, file=sys.stderr) as bar:
        for begin in range(0, len(questions), batch):
            group = questions[begin : begin + batch]
            for question, response in zip(group, ask(group)):
                rank = first_hit(question, response.passages) if question.answerable else None
                ranks.append(rank)
                results.append({
                    "id": question.id,
                    "question": question.question,
                    "answers": question.answers,
                    "sources": question.sources,
                    "hit_rank": rank,
                    **response.to_dict(),
                })
            bar.update(len(group))
    return results, summarize(questions, ranks)
