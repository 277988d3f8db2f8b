"""Command line: parses options, calls the library, turns its errors into messages.

Exit codes: 0 success; 1 ``index --check`` found the index stale; 2 an error (bad input,
missing or mismatched index, unreadable corpus) with a message on stderr.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from assistant import __version__
from assistant.config import DEFAULT_MODEL, Settings
from assistant.errors import AssistantError


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def common_options(command: Callable) -> Callable:
    """--corpus, --index and --model, shared by every command."""

    @click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), default="corpus",
                  envvar="ASSISTANT_CORPUS", show_default=True, help="Folder of source documents.")
    @click.option("--index", "index_dir", type=click.Path(path_type=Path), default="index",
                  envvar="ASSISTANT_INDEX", show_default=True, help="Folder of the persisted index.")
    @click.option("--model", default=DEFAULT_MODEL, envvar="ASSISTANT_MODEL", show_default=True,
                  help="sentence-transformers model: the packaged default, a local path or a cached name.")
    @functools.wraps(command)
    def wrapper(corpus_dir: Path, index_dir: Path, model: str, **kwargs: Any) -> Any:
        try:
            settings = Settings(corpus_dir=corpus_dir, index_dir=index_dir, model=model)
            return command(settings, **kwargs)
        except AssistantError as exc:
            raise UserError(str(exc)) from exc

    return wrapper


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _open(settings: Settings):  # noqa: ANN202 - imported lazily to keep --help fast
    from assistant.pipeline import Assistant

    assistant = Assistant.open(settings)
    stale = assistant.staleness()
    if stale.stale:
        parts = [f"{len(v)} {name}" for name, v in (("new", stale.new), ("changed", stale.changed),
                                                     ("deleted", stale.deleted)) if v]
        _warn(f"the index is stale ({', '.join(parts)} document(s)); run `assistant index` to update it")
    return assistant


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="assistant")
def main() -> None:
    """Answer questions with verbatim quotes from your documents, each with its exact place.

    \b
    Quick start:
      assistant index                       # build index/ from corpus/
      assistant ask "Who is South Korea's foreign affairs minister?"
      assistant eval questions.jsonl --out results.jsonl
    """


@main.command()
@common_options
@click.option("--check", is_flag=True, help="Only report new, changed and deleted documents; exit 1 if stale.")
@click.option("--rebuild", is_flag=True, help="Embed everything again instead of updating.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def index(settings: Settings, check: bool, rebuild: bool, as_json: bool) -> None:
    """Build or update the index of the corpus (only new or changed documents are embedded).

    \b
    Examples:
      assistant index
      assistant index --check        # exit 1 when the index is out of date
      assistant index --rebuild --model /models/my-sentence-model
    """
    from assistant import store

    if check:
        stale = store.check_corpus(settings)
        if as_json:
            _print_json({"stale": stale.stale, "new": stale.new, "changed": stale.changed, "deleted": stale.deleted})
        else:
            for name, docs in (("new", stale.new), ("changed", stale.changed), ("deleted", stale.deleted)):
                for doc in docs:
                    click.echo(f"{name:8} {doc}")
            click.echo("index is stale" if stale.stale else "index is up to date")
        sys.exit(1 if stale.stale else 0)

    from assistant.embedding import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(settings.model, settings.batch_size)
    report = store.build_index(settings, encoder, rebuild=rebuild, progress=not as_json)
    for item in report.skipped:
        _warn(f"skipped {item.path}: {item.path.rsplit('/', 1)[-1]} {item.reason}")
    if as_json:
        _print_json({
            "version": report.version, "added": report.added, "changed": report.changed,
            "deleted": report.deleted, "unchanged": report.unchanged, "chunks": report.chunks,
            "chunks_embedded": report.chunks_embedded, "sentences_embedded": report.sentences_embedded,
            "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
        })
        return
    click.echo(
        f"indexed {len(report.added) + len(report.changed) + len(report.unchanged)} document(s): "
        f"{len(report.added)} added, {len(report.changed)} changed, {len(report.deleted)} deleted, "
        f"{len(report.unchanged)} unchanged; embedded {report.chunks_embedded} chunk(s) and "
        f"{report.sentences_embedded} sentence(s); {report.chunks} chunk(s) in {settings.index_dir}"
    )


@main.command()
@common_options
@click.argument("question")
@click.option("--k", default=5, show_default=True, type=click.IntRange(min=1), help="Number of passages.")
@click.option("--doc", "doc_ids", multiple=True, help="Only search this document id (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the response as JSON.")
def ask(settings: Settings, question: str, k: int, doc_ids: tuple[str, ...], as_json: bool) -> None:
    """Ask a question; prints the best passages with their places in the sources.

    \b
    Example:
      assistant ask "Which navigation app do people use in Seoul?" --k 3
    """
    response = _open(settings).ask(question, k=k, doc_ids=list(doc_ids) or None)
    for notice in response.notices:
        _warn(notice)
    if as_json:
        _print_json(response.to_dict())
        return
    for p in response.passages:
        click.secho(f"[{p.rank}] {p.title} ({p.doc_id}, chars {p.start}-{p.end}, score {p.score:.3f})", bold=True)
        click.echo(p.text.strip() + "\n")


@main.command("eval")
@common_options
@click.argument("questions", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--k", default=10, show_default=True, type=click.IntRange(min=1), help="Passages per question.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Write one JSON result per question here.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def evaluate(settings: Settings, questions: Path, k: int, out: Path | None, as_json: bool) -> None:
    """Run a question set (JSONL) and print hit@1/3/5/10 and MRR@10.

    \b
    Each line: {"id", "question", "answers": [...], "sources": [doc ids]};
    empty "answers" marks a question the corpus does not answer.
    Example:
      assistant eval ../shared/eval/seed-questions-dev.jsonl --out results.jsonl
    """
    from assistant import evaluation

    items = evaluation.load_questions(questions)
    assistant = _open(settings)
    results, summary = evaluation.run(
        items, lambda group: assistant.ask_many([q.question for q in group], k=k), progress=not as_json
    )
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in results), encoding="utf-8")
    if as_json:
        _print_json(summary)
        return
    for key, value in summary.items():
        click.echo(f"{key:12} {value}")
