"""Command line: parses options, calls the library, turns its errors into messages.

Exit codes: 0 success; 1 ``index --check`` found the index stale; 2 an error (bad input,
missing or mismatched index, unreadable corpus) with a message on stderr.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from assistant import __version__
from assistant.config import BACKENDS, DEFAULT_MODEL, DEFAULT_READER, Settings
from assistant.errors import AssistantError, CorpusError, InputError
from assistant.runtime import QUERY_THREADS, configure_process

if TYPE_CHECKING:
    from assistant.corpus import Skipped


class UserError(click.ClickException):
    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


class _Main(click.Group):
    """The command group: a reader that stops reading (``assistant ask ... | head -1``) ends the
    command quietly with exit 0, as other command-line tools do."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            _silence_stdout()
            ctx.exit(0)


def _silence_stdout() -> None:
    """Point stdout at the null device, so that Python's last flush at exit finds no closed pipe."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # not a real file (click's test runner)
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


_DEFAULTS = Settings()


def _index_command(settings: Settings, given: str = "") -> str:
    """``assistant index`` with ``given`` (its options in a hint) and the user's --corpus, --index,
    --model, --backend and --store that differ from the defaults and are not in ``given``: a
    command that acts on the user's index when copied as written."""
    from assistant.embedding import canonical_model_name

    options = {
        "--corpus": str(settings.corpus_dir) if settings.corpus_dir != _DEFAULTS.corpus_dir else None,
        "--index": str(settings.index_dir) if settings.index_dir != _DEFAULTS.index_dir else None,
        "--model": settings.model if canonical_model_name(settings.model) != DEFAULT_MODEL else None,
        "--backend": settings.backend if settings.backend != _DEFAULTS.backend else None,
        "--store": settings.store or None,
    }
    extra = "".join(f" {flag} {shlex.quote(value)}" for flag, value in options.items()
                    if value is not None and flag not in given.split())
    return f"assistant index{given}{extra}"


def _with_user_options(message: str, settings: Settings | None) -> str:
    """``message`` with each `assistant index ...` it suggests completed by ``_index_command``."""
    if settings is None:
        return message
    return re.sub(r"`assistant index([^`]*)`", lambda m: f"`{_index_command(settings, m.group(1))}`", message)


def common_options(command: Callable) -> Callable:
    """--corpus, --index, --model, --backend, --reader and --store, shared by every command."""

    @click.option("--corpus", "corpus_dir", type=click.Path(path_type=Path), default="corpus",
                  envvar="ASSISTANT_CORPUS", show_default=True, help="Folder of source documents.")
    @click.option("--index", "index_dir", type=click.Path(path_type=Path), default="index",
                  envvar="ASSISTANT_INDEX", show_default=True, help="Folder of the persisted index.")
    @click.option("--model", default=DEFAULT_MODEL, envvar="ASSISTANT_MODEL", show_default=True,
                  help="sentence-transformers model: the packaged default, a local path or a cached name.")
    @click.option("--backend", type=click.Choice(BACKENDS), default="torch", envvar="ASSISTANT_BACKEND",
                  show_default=True, help="What runs the model: PyTorch, or ONNX Runtime on an export made "
                  "on first use (an index keeps the backend it was built with).")
    @click.option("--reader", default=DEFAULT_READER, envvar="ASSISTANT_READER", show_default=True,
                  help="Answer reader: the shipped one, a reader folder, or 'none' for the hand-tuned scorer.")
    @click.option("--store", default="", envvar="ASSISTANT_STORE", metavar="milvus-lite:FILE.db|milvus://HOST:PORT",
                  help="Search a copy of the index in Milvus (the scale extra) instead of the index folder; "
                  "`assistant index` writes each new version there, only what changed.")
    @functools.wraps(command)
    def wrapper(corpus_dir: Path, index_dir: Path, model: str, backend: str, reader: str, store: str,
                **kwargs: Any) -> Any:
        settings = None
        try:
            settings = Settings(corpus_dir=corpus_dir, index_dir=index_dir, model=model, backend=backend,
                                reader=reader, store=store)
            return command(settings, **kwargs)
        except AssistantError as exc:
            raise UserError(_with_user_options(str(exc), settings)) from exc

    return wrapper


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


def _show(result: Any, as_json: bool, show: Callable[[Any], None]) -> None:
    """A Response or QuoteCheck: its notices as warnings, then its JSON or ``show(result)``."""
    for notice in result.notices:
        _warn(notice)
    if as_json:
        _print_json(result.to_dict())
    else:
        show(result)


def _warn_skipped(item: Skipped) -> None:
    """One line for a corpus file left out of the index, and why."""
    _warn(f"skipped {item.path}: {item.path.rsplit('/', 1)[-1]} {item.reason}")


def _open(settings: Settings):  # noqa: ANN202 - imported lazily to keep --help fast
    from assistant.pipeline import Assistant

    assistant = Assistant.open(settings)
    stale = assistant.staleness()
    if stale.stale:
        parts = [f"{len(v)} {name}" for name, v in (("new", stale.new), ("changed", stale.changed),
                                                     ("deleted", stale.deleted)) if v]
        _warn(f"the index is stale ({', '.join(parts)} document(s)); run `{_index_command(settings)}` to update it")
    return assistant


def _writable(path: Path, what: str, *, is_folder: bool = False) -> None:
    """Make sure ``what`` can be written to the file ``path`` (or in the folder ``path``) before any
    work is done, leaving nothing behind; InputError in the user's words otherwise."""
    import tempfile

    folder = path if is_folder else path.parent
    existing = next(p for p in (folder, *folder.parents) if p.exists())  # the nearest part there is
    if not existing.is_dir():
        raise InputError(f"cannot write {what} to “{path}”: “{existing}” is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):  # gone when closed
            pass
    except OSError as exc:
        reason = (exc.strerror or "it cannot be written").lower()
        raise InputError(f"cannot write {what} to “{path}”: {reason} in “{existing}”") from exc


def _not_overwriting(out: Path | None, source: Path | None, what: str) -> None:
    """Refuse an --out that is the input file itself."""
    if out is not None and source is not None and str(source) != "-" and out.resolve() == source.resolve():
        raise InputError(f"--out would overwrite the {what} “{source}”; choose another file")


def _read_text(path: Path) -> str:
    """The quote or draft in the file ``path`` (- for stdin); InputError in the user's words
    when it is missing, unreadable, not UTF-8 text or empty."""
    from assistant.corpus import NotText, utf8_text

    name = "standard input" if str(path) == "-" else str(path)

    def refuse(reason: str) -> InputError:
        return InputError(f"cannot read the quote from {name}: {reason}")

    try:
        data = sys.stdin.buffer.read() if str(path) == "-" else path.read_bytes()
    except FileNotFoundError as exc:
        raise refuse("it does not exist") from exc
    except OSError as exc:
        raise refuse((exc.strerror or "it cannot be read").lower()) from exc
    try:
        text = utf8_text(data)
    except NotText as exc:
        raise refuse(f"it {exc}") from exc
    if not text.strip():
        raise InputError("the quote is empty" if str(path) == "-" else f"“{path}” is empty")
    return text


def _doc_ids(assistant: Any, given: tuple[str, ...]) -> list[str] | None:
    """The document ids of --doc: a file name whose extension is dropped is taken for its id
    (with a warning); an unknown one is refused, listing some ids of the index."""
    known = assistant.index.by_id
    ids = []
    for doc in given:
        stem = os.path.splitext(doc)[0]
        if doc not in known and stem in known:
            _warn(f"using document id {stem}")
            doc = stem
        if doc not in known:
            some = sorted(known)[:10]
            more = f" (and {len(known) - len(some)} more)" if len(known) > len(some) else ""
            raise InputError(f"no document with id “{doc}” in the index; ids are like: {', '.join(some)}{more}")
        ids.append(doc)
    return ids or None


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="assistant")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Answer questions with verbatim quotes from your documents, each with its exact place.

    \b
    Quick start:
      assistant index                       # build index/ from corpus/
      assistant ask "Who is South Korea's foreign affairs minister?"
      assistant quote "Kim's comments have been edited and condensed for clarity."
      assistant eval questions.jsonl --out results.jsonl
    """
    # Before torch or FAISS is loaded: an index build uses every core, the rest answer one question at a time.
    configure_process(threads=None if ctx.invoked_subcommand == "index" else QUERY_THREADS)


@main.command()
@common_options
@click.option("--check", is_flag=True, help="Only report new, changed and deleted documents; exit 1 if stale, 2 if the index "
              "was built with another model or backend.")
@click.option("--rebuild", is_flag=True, help="Embed everything again instead of updating.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--ray", "ray_address", metavar="auto|ADDRESS",
              help="Chunk and embed on a Ray cluster (needs the scale extra): 'auto' joins the cluster this "
              "machine belongs to, else starts Ray on its cores; ADDRESS is a head node's HOST:PORT or "
              "ray://HOST:PORT. The index is written here, as without it.")
def index(settings: Settings, check: bool, rebuild: bool, as_json: bool, ray_address: str | None) -> None:
    """Build or update the index of the corpus (only new or changed documents are embedded).

    \b
    Examples:
      assistant index
      assistant index --check        # exit 1 when the index is out of date
      assistant index --rebuild --model /models/my-sentence-model
      assistant index --ray auto     # chunk and embed with Ray Data, here or on a cluster
    """
    from assistant import store
    from assistant.corpus import load_corpus

    if check:
        if ray_address:
            raise click.UsageError("--check only compares the corpus with the index; leave out --ray")
        stale = store.check_corpus(settings)
        if as_json:
            _print_json({"stale": stale.stale, "new": stale.new, "changed": stale.changed, "deleted": stale.deleted})
        else:
            for name, docs in (("new", stale.new), ("changed", stale.changed), ("deleted", stale.deleted)):
                for doc in docs:
                    click.echo(f"{name:8} {doc}")
            click.echo("index is stale" if stale.stale else "index is up to date")
        sys.exit(1 if stale.stale else 0)

    from assistant.embedding import encoder_for, index_model_name

    name = index_model_name(settings.model, settings.backend)
    encoder = encoder_for(name, settings.batch_size)
    if not settings.index_dir.exists():
        encoder.dimension  # noqa: B018 - load the model first: a model that does not load leaves no folder behind
    step = None
    if ray_address:
        from assistant.distributed import on_ray

        step = on_ray(ray_address, functools.partial(encoder_for, name, settings.batch_size))
    try:
        report = store.build_index(settings, encoder, rebuild=rebuild, progress=not as_json, chunk_and_embed=step)
    except CorpusError:
        if settings.corpus_dir.is_dir():  # no readable document: say why each file was left out
            for item in load_corpus(settings.corpus_dir)[1]:
                _warn_skipped(item)
        raise
    for item in report.skipped:
        _warn_skipped(item)
    from assistant.stores import publish

    copied = publish(settings)  # with a Milvus store, the new version goes live there too
    if as_json:
        _print_json({
            "version": report.version, "added": report.added, "changed": report.changed,
            "deleted": report.deleted, "unchanged": report.unchanged, "chunks": report.chunks,
            "chunks_embedded": report.chunks_embedded, "sentences_embedded": report.sentences_embedded,
            "skipped": [{"path": s.path, "reason": s.reason} for s in report.skipped],
            **({"store": {"address": settings.store, "version": copied}} if copied else {}),
        })
        return
    click.echo(
        f"indexed {len(report.added) + len(report.changed) + len(report.unchanged)} document(s): "
        f"{len(report.added)} added, {len(report.changed)} changed, {len(report.deleted)} deleted, "
        f"{len(report.unchanged)} unchanged; embedded {report.chunks_embedded} chunk(s) and "
        f"{report.sentences_embedded} sentence(s); {report.chunks} chunk(s) in {settings.index_dir}"
    )
    if copied:
        click.echo(f"copied to {settings.store} as version {copied}, now the live one there")


@main.command()
@common_options
@click.argument("question")
@click.option("--k", default=Settings.k, show_default=True, type=click.IntRange(min=1), help="Number of passages.")
@click.option("--doc", "doc_ids", multiple=True, help="Only search this document id (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the response as JSON.")
def ask(settings: Settings, question: str, k: int, doc_ids: tuple[str, ...], as_json: bool) -> None:
    """Ask a question; prints the answer sentence and the best passages, each with its place.

    When the sources don't appear to answer, says so and shows the nearest passages.

    \b
    Example:
      assistant ask "Which navigation app do people use in Seoul?" --k 3
    """
    from assistant.terminal import print_response

    assistant = _open(settings)
    _show(assistant.ask(question, k=k, doc_ids=_doc_ids(assistant, doc_ids)), as_json, print_response)


@main.command("eval")
@common_options
@click.argument("questions", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--k", default=Settings.eval_k, show_default=True, type=click.IntRange(min=1),
              help="Passages per question.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the per-question results here (JSONL; CSV when the name ends in .csv).")
@click.option("--report-dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write results.jsonl/.csv, summary.json, timing.json, report.md and hit_at_k.png here.")
@click.option("--skip-invalid", is_flag=True, help="Go on without the invalid lines instead of stopping.")
@click.option("--trec", type=click.Path(path_type=Path, file_okay=False),
              help="Also write run.trec and qrels.trec here (trec_eval, ranx, ir-measures: same hit@k and MRR).")
@click.option("--compare", nargs=2, type=click.Path(path_type=Path), metavar="A B",
              help="Compare two results files (or report folders) question by question instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or comparison) as JSON on stdout.")
def evaluate(settings: Settings, questions: Path | None, k: int, out: Path | None, report_dir: Path | None,
             skip_invalid: bool, trec: Path | None, compare: tuple[Path, Path] | None, as_json: bool) -> None:
    """Run a question set (JSONL or CSV) and score it, or compare two runs.

    \b
    JSONL lines: {"id", "question", "answers": [...], "sources": [doc ids], ...};
    CSV columns: id,question,answers,sources with several values separated by |.
    Empty answers mark a question the corpus does not answer; other fields are kept.
    Examples:
      assistant eval questions.jsonl --report-dir runs/base --json
      assistant eval questions.csv --out results.jsonl --skip-invalid
      assistant eval --compare runs/base runs/new/results.jsonl
      assistant eval questions.jsonl --trec runs/trec   # then: trec_eval -c -m recip_rank ...
    """
    from assistant import evaluation, report

    if compare:
        if questions:
            raise click.UsageError("give either QUESTIONS or --compare A B, not both")
        from assistant.compare import compare_files, compare_text

        for path in compare:
            if not path.exists():
                raise InputError(f"cannot compare: “{path}” does not exist")
        comparison = compare_files(*compare)
        if as_json:
            _print_json(comparison)
        else:
            click.echo(compare_text(comparison))
        return
    if questions is None:
        raise click.UsageError("give a question set (QUESTIONS) or --compare A B")
    _not_overwriting(out, questions, "question set")
    if out:
        _writable(out, "results")
    if report_dir:
        _writable(report_dir, "the report", is_folder=True)
    if trec:
        _writable(trec, "the TREC files", is_folder=True)

    from tqdm import tqdm

    bar = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, desc="Evaluating", unit="question", file=sys.stderr)
        bar.update(done - bar.n)

    assistant = _open(settings)
    try:
        run = evaluation.evaluate_file(questions, assistant, report_dir, k=k, on_progress=progress,
                                       skip_invalid=skip_invalid)
    finally:
        if bar is not None:
            bar.close()
    for problem in run.skipped:
        _warn(f"skipped {problem}")
    if out:
        text = report.results_csv(run.rows) if out.suffix.lower() == ".csv" else report.results_jsonl(run.rows)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8", newline="")
    files = {**run.files, **(report.write_trec(trec, run.rows) if trec else {})}
    if as_json:
        _print_json({**run.summary, "latency_ms": run.timing["latency_ms"], "stamp": run.stamp,
                     "files": {name: str(path) for name, path in files.items()}})
        return
    click.echo(report.summary_text(run.summary, run.timing))
    if run.files:
        click.echo(f"report: {run.files['report']}")
    if trec:
        click.echo(f"TREC run and qrels: {files['trec_run']}, {files['trec_qrels']}")


@main.command()
@common_options
@click.argument("text", required=False)
@click.option("--file", "path", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Read the quote, or a draft, from this UTF-8 file (- for stdin); it may span lines.")
@click.option("--draft", "as_draft", is_flag=True,
              help="Check every quotation of the text (a file holding quotations is read as a draft anyway).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default=None,
              help="A draft's table as text (default), CSV or JSON.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False),
              help="Write a draft's table here (CSV, or JSON when the name ends in .json).")
@click.option("--json", "as_json", is_flag=True, help="Print the check as JSON.")
def quote(settings: Settings, text: str | None, path: Path | None, as_draft: bool, fmt: str | None,
          out: Path | None, as_json: bool) -> None:
    """Check a quote against the sources: verbatim, altered, paraphrase or absent, and where;
    or every quotation of a draft.

    \b
    Prints the verdict, a similarity score (1.0 for verbatim) and every match with its
    document and character span. For an altered quote a word diff marks
    [-source words-] the quote changed or left out and {+quote words+} it changed or added.
    A paraphrase is not a quote; the sentence closest in meaning is shown.
    An ellipsis (... or [...]) marks elided words. Quotes need at least 4 words.
    A draft (--draft, or a file holding quotations in quotation marks) gets a table:
    quotation, verdict, source, speaker, link.
    Exit code 0 for any verdict, 2 for an error.
    Examples:
      assistant quote "Kim's comments have been edited and condensed for clarity."
      assistant quote --file quote.txt --json
      assistant quote --file draft.txt --out checked.csv
    """
    from assistant.drafts import is_draft
    from assistant.terminal import print_quote_check

    if (text is None) == (path is None):
        raise InputError("give the quote either as TEXT or with --file PATH, not both or neither")
    _not_overwriting(out, path, "draft")
    if out is not None:
        _writable(out, "the table")
    if path is not None:
        text = _read_text(path)
        as_draft = as_draft or is_draft(text, settings.quotes.min_words)
    elif not text.strip():
        raise InputError("the quote is empty")
    if as_draft or fmt or out:
        return _check_draft(settings, text, fmt or ("json" if as_json else None), out)
    _show(_open(settings).check_quote(text), as_json, print_quote_check)


def _check_draft(settings: Settings, text: str, fmt: str | None, out: Path | None) -> None:
    """Check every quotation of the draft ``text``; print the table (as ``fmt``) and/or write it to ``out``."""
    from assistant.drafts import FORMATS, table

    rows = table(_open(settings).check_draft(text))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(FORMATS["json" if out.suffix.lower() == ".json" else "csv"](rows), encoding="utf-8", newline="")
        click.echo(f"{len(rows)} quotation(s) checked; table written to {out}", err=True)
    if out is None or fmt:
        click.echo(FORMATS[fmt or "table"](rows), nl=False)


@main.command()
@common_options
@click.option("--host", default="127.0.0.1", envvar="ASSISTANT_HOST", show_default=True,
              help="Address to listen on; 0.0.0.0 serves other machines (set a password then).")
@click.option("--port", default=7860, envvar="ASSISTANT_PORT", show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@click.option("--user", default="assistant", envvar="ASSISTANT_USER", show_default=True,
              help="User name of the login page (with --password).")
@click.option("--password", envvar="ASSISTANT_PASSWORD",
              help="Ask for a login (this password) before the app and the source view.")
def serve(settings: Settings, host: str, port: int, user: str, password: str | None) -> None:
    """Serve the browser app: ask, check quotes, evaluate, browse the library.

    The model, index and reader load once; a rebuilt index is picked up without a restart.

    \b
    Examples:
      assistant serve                              # http://127.0.0.1:7860
      assistant serve --host 0.0.0.0 --password s3cret
    """
    from assistant.ui import exposure_warning, open_app
    from assistant.ui import serve as run_server

    auth = (user, password) if password else None
    warning = exposure_warning(host, auth)
    if warning:
        click.echo(warning, err=True)
    served = open_app(settings, host=host, port=port, auth=auth)
    click.echo(f"Serving on http://{host}:{port}  (Ctrl+C to stop)", err=True)
    run_server(served.app, host, port)
