"""What each control of the app does: call the library, turn its result into HTML or tables.

No retrieval, answering, quote-checking or scoring happens here. In the Ask tab library errors
become ``gr.Error`` with the library's message, and an empty question a gentle ``gr.Warning``; a
check that is refused (Check a quote, Compare runs) says why in place of its result, so no
earlier verdict stays on screen under the new input.
"""

from __future__ import annotations

import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.conversation import Turn, answered, ask_turn, next_turn
from assistant.errors import AssistantError
from assistant.metrics import EXPLANATIONS, metric_counts
from assistant.pipeline import Assistant, LiveAssistant
from assistant.retrieval import clean_question
from assistant.types import format_citation
from assistant.ui.render import (
    document_link,
    link,
    render_draft_table,
    render_message,
    render_quote_check,
    render_response,
    render_comparison,
    render_metrics,
    render_table,
    render_user,
    text,
)

EMPTY_QUESTION = "Type a question about the documents first."
EMPTY_QUOTE = "Paste a quote to check first."
EMPTY_DRAFT = "Paste a draft with quotations to check first."
DRAFT_GIVEN = ("This text holds {count} quotation{s} in quotation marks: press “Check every quotation” to check "
               "each of them, or paste one quote alone.")
NO_CITATION = "There is no answer to cite: the latest question was not answered, or none was asked yet."
NO_QUESTION_SET = "Choose a question set file (JSONL or CSV) first."
TWO_RUNS = "Run two evaluations first: a comparison needs two runs of this session."
SAME_RUN = "Choose two different runs to compare."
SKIP_LABEL = "Skip invalid lines"
SKIP_HINT = f"Fix these lines, or tick “{SKIP_LABEL}” to run the other questions."
# Heavy marks: the table's font (IBM Plex Mono) draws the light check mark ✓ as a square root √.
PASS, FAIL = "✔ pass", "✘ fail"
ROW_COLUMNS = ["Result", "Id", "Question", "Expected", "Answer", "Hit rank", "Confidence"]
COLUMN_WIDTHS = ("9%", "7%", "21%", "16%", "29%", "8%", "10%")  # every column in view at 1280 px
GROUP_COLUMNS = ("questions", "hit@5", "answer_accuracy", "answered", "abstention_accuracy")


def as_live(assistant: Assistant | LiveAssistant) -> LiveAssistant:
    """``assistant`` as a LiveAssistant, which follows index rebuilds without a restart."""
    return assistant if isinstance(assistant, LiveAssistant) else LiveAssistant(assistant)


class Handlers:
    """The app's event handlers over the live index version.

    Each request takes ``live.current()`` once and uses that Assistant throughout, so it is
    answered wholly from one index version, even while ``assistant index`` switches to a new
    one. ``results_dir`` receives one folder per evaluation run (default: the system temp folder).
    """

    def __init__(self, assistant: Assistant | LiveAssistant, results_dir: Path | None = None) -> None:
        self.live = as_live(assistant)
        self.results_dir = results_dir

    # --- Ask --------------------------------------------------------------------------------

    def ask(self, question: str, history: list[dict[str, Any]], turns: list[dict[str, str]], k: float,
            doc_ids: list[str] | None) -> tuple[Any, ...]:
        """Answer ``question`` in the conversation so far.

        Returns (cleared question box, chat history, turns, citation, response as JSON).
        """
        if not question or not question.strip():
            gr.Warning(EMPTY_QUESTION)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        turn = next_turn(question, [Turn(**t) for t in turns or []])
        try:
            assistant = self.live.current()
            response, turn = ask_turn(
                lambda query: assistant.ask(query, k=int(k), doc_ids=list(doc_ids or []) or None), turn)
        except AssistantError as exc:
            raise gr.Error(str(exc)) from exc
        history = list(history or []) + [
            {"role": "user", "content": render_user(_searched(question, assistant.settings.max_question_chars))},
            {"role": "assistant", "content": render_response(response, turn, _scope(doc_ids, assistant))},
        ]
        if response.answer:
            phrase = response.answer.phrase.text if response.answer.phrase else None
            turn = answered(turn, response.answer.citation.text, phrase, response.answer.citation.author)
        citation = format_citation(response.answer.citation, place=True, quote=True) if response.answer else ""
        payload = {"asked": question, "query": turn.query, "follow_up": turn.follow_up, **response.to_dict()}
        return "", history, list(turns or []) + [asdict(turn)], citation, payload

    @staticmethod
    def copied(citation: str) -> None:
        """Say whether "Copy citation" had anything to copy (the browser does the copying)."""
        if citation:
            gr.Info("Citation copied to the clipboard.")
        else:
            gr.Warning(NO_CITATION)

    @staticmethod
    def clear() -> tuple[Any, ...]:
        """A fresh conversation: (chat, turns, citation, JSON)."""
        return [], [], "", None

    def documents(self) -> list[tuple[str, str]]:
        """(label, id) of every document of the live index, for the document filter."""
        return [(f"{d.metadata.title} ({d.doc_id})", d.doc_id) for d in self.live.current().index.documents]

    def document_choices(self) -> Any:
        """The document filter with the live index's documents (the selection is kept)."""
        return gr.Dropdown(choices=self.documents())

    # --- Check a quote ----------------------------------------------------------------------

    def check_quote(self, quote: str) -> tuple[Any, Any]:
        """(verdict HTML, QuoteCheck as JSON) for ``quote``; why not, in place of the verdict,
        for an empty quote or one the library refuses (too short, too long)."""
        from assistant.drafts import find_quotations, is_draft

        if not quote or not quote.strip():
            return render_message(EMPTY_QUOTE), None
        assistant = self.live.current()
        if is_draft(quote, assistant.settings.quotes.min_words):  # one verdict for all of it would mislead
            count = len(find_quotations(quote, assistant.settings.quotes.min_words))
            return render_message(DRAFT_GIVEN.format(count=count, s="" if count == 1 else "s")), None
        try:
            check = assistant.check_quote(quote)
        except AssistantError as exc:
            return render_message(_sentence(str(exc))), None
        data = check.to_dict()
        return render_quote_check(data), data

    def check_draft(self, draft: str) -> tuple[Any, Any, Any]:
        """(table HTML, rows as JSON, [CSV, JSON] files) for every quotation of ``draft``; why not,
        in place of the table and with no files, for an empty draft or one without quotations."""
        from assistant.drafts import table, table_csv, table_json

        if not draft or not draft.strip():
            return render_message(EMPTY_DRAFT), None, None
        try:
            rows = table(self.live.current().check_draft(draft))
        except AssistantError as exc:
            return render_message(_sentence(str(exc))), None, None
        folder = Path(tempfile.mkdtemp(prefix="draft-", dir=self.results_dir))
        files = [folder / "quotations.csv", folder / "quotations.json"]
        files[0].write_text(table_csv(rows), encoding="utf-8", newline="")
        files[1].write_text(table_json(rows), encoding="utf-8")
        return render_draft_table(rows), rows, [str(f) for f in files]

    # --- Evaluate ---------------------------------------------------------------------------

    def evaluate(self, path: str | None, k: float, runs: list[dict[str, str]] | None = None,
                 skip_invalid: bool = False,
                 progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008 - Gradio's idiom
        """Run an uploaded question set: (summary HTML, per-question rows, result files, summary JSON,
        the session's runs with this one added: ``{"label", "dir"}`` each). ``skip_invalid`` runs
        the valid questions of a set with bad lines, each left out said in a warning."""
        from assistant.evaluation import evaluate_file

        if not path:
            gr.Warning(NO_QUESTION_SET)
            return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()
        out_dir = Path(tempfile.mkdtemp(prefix="eval-", dir=self.results_dir))
        progress(0, desc="Checking the question set")

        def on_progress(done: int, total: int) -> None:
            progress((done, total), desc="Answering questions", unit="questions")

        try:
            run = evaluate_file(path, self.live.current(), out_dir, k=int(k), on_progress=on_progress,
                                skip_invalid=bool(skip_invalid))
        except AssistantError as exc:
            raise gr.Error(question_set_problem(exc, path)) from exc
        for problem in run.skipped:
            gr.Warning(str(problem))
        rows = sorted((_row(r) for r in run.rows), key=lambda r: r[0] != FAIL)
        files = [str(p) for p in run.files.values() if Path(p).is_file()]
        runs = [*(runs or []), {"label": _run_label(len(runs or []) + 1, run.stamp, run.timing), "dir": str(out_dir)}]
        return _summary_html(run.summary, run.rows), rows, files, run.summary, runs

    @staticmethod
    def run_choices(runs: list[dict[str, str]]) -> tuple[Any, Any]:
        """The two run dropdowns over the session's runs: A the one before the latest, B the latest."""
        labels = [r["label"] for r in runs or []]
        return (gr.Dropdown(choices=labels, value=labels[-2] if len(labels) > 1 else None),
                gr.Dropdown(choices=labels, value=labels[-1] if labels else None))

    @staticmethod
    def compare(a: str | None, b: str | None, runs: list[dict[str, str]]) -> Any:
        """Runs A and B of the session question by question: deltas, paired tests, flipped questions;
        why not, in place of the comparison, when two different runs are not chosen."""
        from assistant.compare import compare_files

        folders = {r["label"]: r["dir"] for r in runs or []}
        if len(folders) < 2 or a not in folders or b not in folders:
            return render_message(TWO_RUNS)
        if a == b:
            return render_message(SAME_RUN)
        try:
            comparison = compare_files(folders[a], folders[b])
        except AssistantError as exc:
            return render_message(_sentence(str(exc)))
        return render_comparison(comparison, a, b)

    def check_question_set(self, path: str | None, k: float | None = None, runs: list[dict[str, str]] | None = None,
                           skip_invalid: bool = False) -> list[Any]:
        """Validate an uploaded question set before the run: what is wrong with it, said once
        (a verdict for each input of ``evaluate``: the file, k, the session's runs, skip_invalid)."""
        problem = self._question_set_problem(path, skip_invalid)
        return [gr.validate(not problem, problem), *[gr.validate(True, "")] * 3]

    def check_upload(self, path: str | None, skip_invalid: bool = False) -> list[Any]:
        """The same check as soon as a file is uploaded (or the box ticked): a verdict for the
        file and one for the box."""
        problem = self._question_set_problem(path, skip_invalid)
        return [gr.validate(not problem, problem), gr.validate(True, "")]

    def _question_set_problem(self, path: str | None, skip_invalid: bool) -> str:
        """What is wrong with the question set at ``path``, in the app's words ("" if nothing)."""
        from assistant.evaluation import load_question_set

        if not path:  # no file: ``evaluate`` asks for one
            return ""
        try:
            load_question_set(path, documents=self.live.current().index.by_id, skip_invalid=bool(skip_invalid))
        except AssistantError as exc:
            return question_set_problem(exc, path)
        return ""

    # --- Library ----------------------------------------------------------------------------

    def library(self) -> str:
        """The documents with their metadata, and the index status."""
        assistant = self.live.current()
        return _index_status(assistant) + _documents_table(assistant)


def question_set_problem(exc: Exception, path: str) -> str:
    """The library's message about an uploaded question set, in the app's terms: the file by its
    own name, not the server's temporary path, and the "Skip invalid lines" box, not a CLI flag."""
    name = Path(path).name
    message = str(exc).replace(str(path), f"“{name}”").replace(str(Path(path).resolve()), f"“{name}”")
    lines = [SKIP_HINT if "--skip-invalid" in line else line for line in message.splitlines()]
    return _sentence("\n".join(lines))


def _sentence(message: str) -> str:
    """A library message (lower-case, maybe without a stop) as a sentence on its own."""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message[-1] in ".!?:”" else message + "."


def _searched(question: str, limit: int) -> str:
    """The question as it was searched: cut to ``limit`` characters (marked …) when longer."""
    try:
        cleaned, notices = clean_question(question, limit)
    except AssistantError:
        return question
    return cleaned + " …" if notices else question


def _scope(doc_ids: list[str] | None, assistant: Assistant) -> str:
    """How much was searched when the document filter is on ("" when every document was)."""
    chosen, total = len(set(doc_ids or [])), len(assistant.index.documents)
    if not chosen or chosen >= total:
        return ""
    return f"Searched {chosen} of {total} documents (chosen in Options)."


def _row(row: dict[str, Any]) -> list[Any]:
    metrics, answer = row.get("metrics", {}), row.get("answer")
    failed = (metrics.get("answer_correct") == 0 or metrics.get("abstained") == 0
              or (bool(row.get("answers")) and metrics.get("hit_rank") is None))
    return [
        FAIL if failed else PASS,
        row["id"],
        row["question"],
        " | ".join(row.get("answers") or []) or "(not answerable)",
        answer["text"] if answer else "(abstained)",
        metrics.get("hit_rank") if metrics.get("hit_rank") is not None else "",
        f"{answer['confidence']:.2f}" if answer else "",
    ]


def _run_label(number: int, stamp: dict[str, Any], timing: dict[str, Any]) -> str:
    """``Run 2: small.jsonl · reader reader-v2 · k 10 · 14:03:22 UTC``."""
    return (f"Run {number}: {stamp['question_set']['name']} · reader {stamp['reader']['name']} · "
            f"k {stamp['settings']['k']} · {timing['started_at'][11:19]} UTC")


def _summary_html(summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """The figures as a compact grid, each with how many questions it is over, then (collapsed)
    what each means; then the groups."""
    counts = metric_counts(rows)
    figures = [(name, _cell(value), f"{counts[name]} q." if name in counts else "", EXPLANATIONS.get(name, ""))
               for name, value in summary.items() if not isinstance(value, dict | list)]
    calibration = summary.get("calibration") or {}
    if calibration.get("ece") is not None:
        figures.append(("calibration error (ECE)", _cell(calibration["ece"]), f"{calibration['answered']} answers",
                        EXPLANATIONS["ece"]))
    html = render_metrics(figures, "Summary (q.: the questions a metric is over)")
    html += ('<details class="qa-others" id="eval-explained"><summary>What the metrics mean</summary>'
             + render_table(["Metric", "Value", "Questions", "What it means"],
                            [[name, value, note, meaning] for name, value, note, meaning in figures],
                            "Every metric, the questions it is over, and what it means") + "</details>")
    groups = dict(summary.get("by_prefix") or {})
    for field, values in (summary.get("by_category") or {}).items():
        groups |= {f"{field} = {value}": metrics for value, metrics in values.items()}
    if groups:
        html += render_table(["Group", *GROUP_COLUMNS],
                             [[name, *(_cell(m.get(c)) for c in GROUP_COLUMNS)] for name, m in groups.items()],
                             "By id prefix and category")
    return html


def _cell(value: Any) -> str:
    return "—" if value is None else str(value)


def _index_status(assistant: Assistant) -> str:
    manifest = assistant.index.manifest
    counts = manifest.get("counts", {})
    try:
        staleness = assistant.staleness()
        if staleness.stale:
            changes = [f"{len(v)} {name}" for name, v in (("new", staleness.new), ("changed", staleness.changed),
                                                           ("deleted", staleness.deleted)) if v]
            names = ", ".join(staleness.new + staleness.changed + staleness.deleted)
            state = (f'<span class="qa-status-stale">Stale</span>: {text(", ".join(changes))} '
                     f"({text(names)}). Run <code>assistant index</code> to update it.")
        else:
            state = '<span class="qa-status-ok">Up to date</span> with the corpus folder.'
    except AssistantError as exc:
        state = f'<span class="qa-status-stale">Unknown</span>: {text(exc)}'
    model = manifest.get("model", {})
    rows = [
        ("Status", state),
        ("Model", text(f"{model.get('name', '?')} ({model.get('dimension', '?')} dimensions)")),
        ("Reader", text("{name} ({fingerprint})".format(**assistant.reader_stamp))),
        ("Built", text(manifest.get("created_at", "?"))),
        ("Version", text(assistant.index.version or "?")),
        ("Contents", text(f"{counts.get('documents', '?')} documents, {counts.get('chunks', '?')} chunks, "
                          f"{counts.get('sentences', '?')} sentences")),
    ]
    body = "".join(f'<tr><th scope="row">{text(k)}</th><td>{v}</td></tr>' for k, v in rows)
    return (f'<div class="qa-table-wrap" id="index-status"><table class="qa-table"><caption>Index</caption>'
            f"<tbody>{body}</tbody></table></div>")


def _documents_table(assistant: Assistant) -> str:
    rows = []
    for doc in assistant.index.documents:
        meta = doc.metadata
        rows.append([link(document_link(doc.doc_id), meta.title), meta.author or "—",
                     meta.publisher or "—", meta.date or "—", doc.path, f"{len(doc.text):,}",
                     str(len(doc.page_starts)) if doc.page_starts else "—"])
    return render_table(["Title", "Author", "Publisher", "Date", "File", "Characters", "Pages"], rows,
                        f"Documents ({len(rows)})", raw=0)
