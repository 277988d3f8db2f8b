"""Question sets in, per-question results and a summary out.

A question set is JSONL (one ``{"id", "question", "answers": [...], "sources": [...]}`` per
line) or CSV (``id,question,answers,sources`` with several answers or sources separated by
``|``). Any other field is kept as ``extra`` and passed through to the results; scalar extra
fields (e.g. ``category``) also get a breakdown in the summary, as do id prefixes such as
``imp-`` and ``ooc-``. Empty ``answers`` marks a question the corpus does not answer.

:func:`evaluate_file` is the one call the CLI and the app make: validate, run, score, write.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import hashlib
import io
import json
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant import __version__
from assistant.config import Settings
from assistant.corpus import NotText, utf8_text
from assistant.errors import InputError
from assistant.metrics import (
    CUTOFFS,
    answer_metrics,
    first_hit,
    latency_summary,
    normalize_answer,
    ranking_metrics,
    retrieval_metrics,
    summarize_rows,
)

if TYPE_CHECKING:
    from assistant.pipeline import Assistant, Response

__all__ = ["CUTOFFS", "EvalRun", "Evaluation", "Problem", "Question", "QuestionSet", "evaluate",
           "evaluate_file", "first_hit", "latency_summary", "load_question_set", "normalize_answer", "summarize_rows"]

Progress = Callable[[int, int], None]
Ask = Callable[[list["Question"]], Sequence["Response"]]

MAX_LISTED = 20  # problems listed in an error message
_RESERVED = {"id", "question", "answers", "sources"}


@dataclass(frozen=True)
class Question:
    """One item of a question set; no ``answers`` means the corpus does not answer it."""

    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    line: int = 0

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass(frozen=True)
class Problem:
    """What is wrong with one line of a question set."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True)
class QuestionSet:
    """A validated question set: its questions, the lines skipped and a hash of the file."""

    path: Path
    sha256: str
    questions: list[Question]
    skipped: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class Evaluation:
    """Scored results: one row per question, the summary and the seconds each question took."""

    rows: list[dict[str, Any]]
    summary: dict[str, Any]
    latencies: list[float]


@dataclass(frozen=True)
class EvalRun:
    """A finished run as :func:`evaluate_file` returns it.

    ``summary``, ``rows`` and ``stamp`` are the same for two runs of the same inputs;
    everything that depends on the clock is in ``timing``. ``files`` maps ``results_jsonl``,
    ``results_csv``, ``summary``, ``timing``, ``report`` and ``plot`` to the paths written.
    """

    summary: dict[str, Any]
    rows: list[dict[str, Any]]
    stamp: dict[str, Any]
    timing: dict[str, Any]
    skipped: list[Problem]
    files: dict[str, Path]


# --- reading question sets -------------------------------------------------------------------


def _decoded(data: bytes, name: str) -> str:
    """``data`` as UTF-8 text, or an InputError that says, by file name, why it is not."""
    try:
        return utf8_text(data)
    except NotText as exc:
        hint = ": a question set is JSONL or CSV text" if exc.binary else ""
        raise InputError(f"“{name}” {exc}{hint}") from exc


def load_question_set(path: str | Path, *, documents: Collection[str] | None = None,
                      skip_invalid: bool = False) -> QuestionSet:
    """Read and validate a JSONL or CSV question set (CSV when the name ends in ``.csv``).

    Every malformed line, duplicate id, empty question and (when ``documents`` is given)
    source id not among ``documents`` is reported with its line number. Raises InputError
    listing them, unless ``skip_invalid``, which drops those lines and records them in
    ``skipped``. Also raises InputError for an unreadable file, a CSV without ``id`` and
    ``question`` columns, and a set with no usable question.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot open the question set {path}: {exc.strerror or exc}") from exc
    text = _decoded(data, path.name)
    records = _csv_records(text, path) if path.suffix.lower() == ".csv" else _jsonl_records(text)
    questions: list[Question] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    for line, record in records:
        if isinstance(record, str):
            problems.append(Problem(line, record))
            continue
        found = _check(record, seen, documents)
        if found:
            problems += [Problem(line, message) for message in found]
            continue
        qid = str(record["id"])
        seen.add(qid)
        extra = {key: value for key, value in record.items() if key not in _RESERVED}
        questions.append(Question(qid, record["question"].strip(), list(record.get("answers", [])),
                                  list(record.get("sources", [])), extra, line))
    if problems and not skip_invalid:
        listed = "\n  ".join(str(p) for p in problems[:MAX_LISTED])
        more = f"\n  ... and {len(problems) - MAX_LISTED} more" if len(problems) > MAX_LISTED else ""
        raise InputError(f"question set {path} has {len(problems)} problem(s):\n  {listed}{more}\n"
                         "Fix these lines, or skip them with --skip-invalid.")
    if not questions:
        raise InputError(f"question set {path} has no usable questions")
    return QuestionSet(path, hashlib.sha256(data).hexdigest(), questions, problems)


def _jsonl_records(text: str) -> list[tuple[int, dict[str, Any] | str]]:
    records: list[tuple[int, dict[str, Any] | str]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            records.append((number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        records.append((number, item if isinstance(item, dict) else "expected a JSON object"))
    return records


def _csv_records(text: str, path: Path) -> list[tuple[int, dict[str, Any] | str]]:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, dict[str, Any] | str]] = []
    try:
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in ("id", "question") if name not in header]
        if missing or len(set(header)) != len(header):
            raise InputError(f"question set {path}: line 1 must be a header naming the columns id, question, "
                             f"answers, sources (each once), got {','.join(header) or 'nothing'}")
        start = reader.line_num + 1
        for row in reader:
            line, start = start, reader.line_num + 1
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                records.append((line, f"expected {len(header)} fields ({','.join(header)}), got {len(row)}"))
                continue
            record: dict[str, Any] = {}
            for name, cell in zip(header, row):
                if name in ("answers", "sources"):
                    record[name] = [part.strip() for part in cell.split("|") if part.strip()]
                elif name in ("id", "question") or cell.strip():
                    record[name] = cell.strip() if name == "id" else cell
            records.append((line, record))
    except csv.Error as exc:
        raise InputError(f"question set {path}: line {reader.line_num} is not valid CSV ({exc})") from exc
    return records


def _check(record: dict[str, Any], seen: set[str], documents: Collection[str] | None) -> list[str]:
    """The problems of one parsed record (empty when it is right)."""
    problems = []
    qid, text = record.get("id"), record.get("question")
    answers, sources = record.get("answers", []), record.get("sources", [])
    if isinstance(qid, bool) or not isinstance(qid, str | int) or str(qid).strip() == "":
        problems.append('missing or empty "id"')
    elif str(qid) in seen:
        problems.append(f"duplicate id {str(qid)!r}")
    if not isinstance(text, str) or not text.strip():
        problems.append('empty or missing "question"')
    if not _strings(answers) or any(not a.strip() for a in answers):
        problems.append('"answers" must be a list of non-empty strings')
    if not _strings(sources):
        problems.append('"sources" must be a list of document ids')
    elif documents is not None:
        for source in sources:
            if source not in documents:
                close = difflib.get_close_matches(source, list(documents), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.append(f"unknown source document id {source!r} (not in the index){hint}")
    return problems


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


# --- running and scoring ---------------------------------------------------------------------


def evaluate(questions: Sequence[Question], ask: Ask, *, k: int = Settings.eval_k, batch: int = 1,
             on_progress: Progress | None = None) -> Evaluation:
    """Ask every question (``ask`` takes a list and returns one Response each) and score it.

    ``batch=1`` (the default) makes each latency that of one question alone.
    ``on_progress(done, total)`` is called after each batch. Raises InputError for a bad
    ``k`` or ``batch``.
    """
    if k < 1 or batch < 1:
        raise InputError(f"k and batch must be at least 1, got k={k} and batch={batch}")
    responses: list[Response] = []
    latencies: list[float] = []
    for begin in range(0, len(questions), batch):
        group = list(questions[begin : begin + batch])
        started = time.perf_counter()
        answered = list(ask(group))
        elapsed = time.perf_counter() - started
        if len(answered) != len(group):
            raise InputError(f"ask returned {len(answered)} responses for {len(group)} questions")
        responses += answered
        latencies += [elapsed / len(group)] * len(group)
        if on_progress:
            on_progress(len(responses), len(questions))
    ranking = ranking_metrics([(q, r.passages) for q, r in zip(questions, responses)], k)
    rows = [_row(q, r, k, ranked) for q, r, ranked in zip(questions, responses, ranking)]
    return Evaluation(rows, summarize_rows(rows, k), latencies)


def _row(question: Question, response: Response, k: int, ranked: dict[str, float | None]) -> dict[str, Any]:
    metrics = retrieval_metrics(question, response.passages, k) | ranked | answer_metrics(question, response.answer)
    return {
        "id": question.id,
        "question": question.question,
        "answers": question.answers,
        "sources": question.sources,
        "extra": question.extra,
        "answer": response.answer.to_dict() if response.answer else None,
        "passages": [p.to_dict() for p in response.passages],
        "notices": list(response.notices),
        "metrics": metrics,
    }


# --- the one call of the CLI and the app -----------------------------------------------------


def evaluate_file(path: str | Path, assistant: Assistant, out_dir: str | Path | None = None, *,
                  k: int | None = None, on_progress: Progress | None = None, skip_invalid: bool = False) -> EvalRun:
    """Validate a question set (JSONL or CSV), run it through ``assistant`` and score it.

    Nothing is asked until the whole file validates (source ids are checked against the
    index's documents), unless ``skip_invalid`` drops the bad lines. ``on_progress(done,
    total)`` is called as questions are answered. When ``out_dir`` is given, it receives
    ``results.jsonl``, ``results.csv``, ``summary.json`` (stamp and metrics), ``timing.json``,
    ``report.md`` and ``hit_at_k.png``; all but the timing and the report's timing section
    are byte-identical for two runs of the same inputs.

    ``k`` passages are retrieved per question (default: the assistant's ``settings.eval_k``).
    Returns an EvalRun. Raises InputError for an invalid question set or ``k``.
    """
    from assistant.report import write_outputs

    k = assistant.settings.eval_k if k is None else k
    question_set = load_question_set(path, documents=assistant.index.by_id, skip_invalid=skip_invalid)
    stamp = run_stamp(question_set, assistant, k)
    # Load the model and warm caches first, so no question's latency includes loading them.
    assistant.ask_many([question_set.questions[0].question], k=k)
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    result = evaluate(question_set.questions, lambda group: assistant.ask_many([q.question for q in group], k=k),
                      k=k, on_progress=on_progress)
    timing = {
        "started_at": started.isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - clock, 2),
        "latency_ms": latency_summary(result.latencies),
        "per_question_ms": {row["id"]: round(s * 1000, 2) for row, s in zip(result.rows, result.latencies)},
    }
    files = write_outputs(Path(out_dir), result.summary, result.rows, stamp, timing) if out_dir else {}
    return EvalRun(result.summary, result.rows, stamp, timing, question_set.skipped, files)


def run_stamp(question_set: QuestionSet, assistant: Assistant, k: int) -> dict[str, Any]:
    """What produced a run, without the time: same inputs, same stamp."""
    import ir_measures

    index = assistant.index
    manifest = json.dumps(index.manifest, sort_keys=True, ensure_ascii=False).encode()
    settings = {name: value if isinstance(value, str | int | float | bool | None) else str(value)
                for name, value in _flat(assistant.settings).items() if name not in ("corpus_dir", "index_dir")}
    return {
        "package_version": __version__,
        "metrics_library": f"ir-measures {ir_measures.__version__}",
        "model": index.model,
        "reader": assistant.reader_stamp,
        "index": {"manifest_sha256": hashlib.sha256(manifest).hexdigest(), "version": index.version,
                  "documents": len(index.documents), "chunks": len(index)},
        "question_set": {"name": question_set.path.name, "sha256": question_set.sha256,
                         "questions": len(question_set.questions),
                         "skipped": [str(p) for p in question_set.skipped]},
        "settings": settings | {"k": k},
    }


def _flat(settings: object, prefix: str = "") -> dict[str, Any]:
    """A settings dataclass as one level of names, those of nested ones dotted (``quotes.min_words``)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(settings):
        value = getattr(settings, f.name)
        if dataclasses.is_dataclass(value):
            out |= _flat(value, f"{prefix}{f.name}.")
        else:
            out[prefix + f.name] = value
    return out
