"""How an answer and a quote check look in a terminal (the CLI's counterpart of ``ui/render.py``)."""

from __future__ import annotations

import click

from assistant.pipeline import Response
from assistant.quotes import PARAPHRASE_NOTE
from assistant.types import Answer, DiffOp, QuoteCheck, Span, format_citation


def print_response(response: Response) -> None:
    """The answer with its phrase and citation, then the passages; or the abstention."""
    answer = response.answer
    if answer:
        click.secho(f"Answer (confidence {answer.confidence:.2f}):", bold=True)
        if answer.phrase:
            click.echo("  " + click.style(answer.phrase.text, bold=True, underline=True))
        click.echo(f"  “{_marked(answer)}”")
        click.echo(f"  — {format_citation(answer.citation, place=True)}\n")
        click.secho("Passages:", bold=True)
    else:
        click.secho("The sources don't appear to answer this. Nearest passages (weak matches):", bold=True)
    for p in response.passages:
        # No raw fusion score, as in the app: it only ranks the passages (``--json`` keeps it).
        click.secho(f"[{p.rank}] {format_citation(p.citation, place=True)}", bold=True)
        click.echo(p.citation.text.strip() + "\n")


def _marked(answer: Answer) -> str:
    """The answer's text with its phrase, if any, underlined (plain text when not a terminal)."""
    parts = answer.around_phrase()
    if parts is None:
        return answer.citation.text
    before, phrase, after = parts
    return before + click.style(phrase, underline=True) + after


def print_quote_check(check: QuoteCheck) -> None:
    """The verdict, each match with its place and word diff, or the nearest passages."""
    click.secho(f"{check.verdict} (score {check.score:.3f})", bold=True)
    if check.verdict == "paraphrase":
        click.echo(f"Not verified: {PARAPHRASE_NOTE}:")
    for number, match in enumerate(check.matches, start=1):
        how = "exact" if match.exact else (
            "after normalising " + ", ".join(match.normalizations) if match.normalizations else "closest span")
        if check.verdict == "paraphrase":
            how = f"meaning similarity {match.score:.2f}"
        cited = match.citation
        click.secho(f"[{number}] {format_citation(cited, place=True)} ({how})", bold=True)
        for part in match.parts:
            click.echo(f"    part chars {part.start}-{part.end}: "
                       f"{_shorten(cited.text[part.start - cited.span.start : part.end - cited.span.start])}")
        if match.diff:
            click.echo("    " + _word_diff(match.diff, match.parts))
        else:
            click.echo("    " + _shorten(" ".join(cited.text.split()), 400))
    if check.verdict == "absent":
        click.echo("No close passage in the sources. Nearest passages, for context only (not matches):")
        for p in check.nearest:
            click.echo(f"  - {format_citation(p.citation, place=True)}: {_shorten(' '.join(p.citation.text.split()))}")


def _shorten(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit // 2 - 2] + " … " + text[-(limit // 2 - 2) :]


def _word_diff(diff: tuple[DiffOp, ...], parts: tuple[Span, ...] = ()) -> str:
    """The diff of a QuoteMatch as one line: [-source-]{+quote+}, long equal runs shortened,
    `` … `` where the quote elides words between ``parts``."""
    ends, total = [], 0
    for part in parts[:-1]:
        total += part.end - part.start
        ends.append(total)
    out, consumed = [], 0
    for d in diff:
        source, said = " ".join(d.source.split()), " ".join(d.quote.split())
        tail = " " if (d.source or d.quote)[-1:].isspace() else ""
        if d.op == "equal":
            out.append(_shorten(source, 120) + tail)
        else:
            deleted = click.style(f"[-{source}-]", fg="red") if source else ""
            added = click.style(f"{{+{said}+}}", fg="green") if said else ""
            out.append(deleted + added + tail)
        consumed += len(d.source)
        if d.source and consumed in ends:
            out.append(" … ")
    return "".join(out).strip()
