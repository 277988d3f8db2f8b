"""HTML for the browser app. Every piece of document or user text goes through ``text()``.

Document text is hostile until proven otherwise: it may hold HTML, script tags, markdown
image links to remote hosts, template syntax or lines thousands of characters long. ``text()``
escapes HTML and also turns every character that markdown, LaTeX or Gradio's HTML templates
would interpret into a numeric character reference, and writes line breaks as ``<br>`` so
that no fragment ever contains a blank line (which would end an HTML block inside the chat's
markdown and let what follows be parsed as markdown). What the browser shows is the text,
character for character; nothing in it is ever interpreted.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

from assistant.compare import ALPHA, differences_note, flips
from assistant.conversation import Turn
from assistant.pipeline import Response
from assistant.quotes import PARAPHRASE_NOTE
from assistant.types import Answer, Citation, Passage, format_citation

# Markdown, GFM, LaTeX ($) and Handlebars/JS-template ({ } $ `) syntax, plus HTML's own.
_INERT = str.maketrans({c: f"&#{ord(c)};" for c in "&<>\"'`*_[](){}!#|~$\\:+-=^"})
_BREAKS = str.maketrans({"\r": "", "\u2028": "\n", "\u2029": "\n", "\x0b": "\n", "\x0c": "\n"})
CONTEXT_CHARS = 240
SNIPPET_CHARS = 280
ABSTAIN_MESSAGE = "The sources don't appear to answer this."
# What each list of passages is, in plain words: a raw retrieval score means nothing to a reader.
PASSAGE_LABELS = {"other": "also matched", "weak": "weak match", "nearest": "for context only"}
VERDICT_LABELS = {
    "verbatim": ("Verbatim", "The quote occurs word for word in the sources."),
    "altered": ("Altered", "A close passage exists, but the quote differs from it."),
    # The "not a quote; closest in meaning" line comes once, above the sentence (render_quote_check).
    "paraphrase": ("Paraphrase", "The words are not in the sources, but the sentence below says much the same. "
                                 "It is not a verified quote."),
    "absent": ("Absent", "The quote was not found in the sources."),
}


def text(value: object) -> str:
    """``value`` as inert HTML text: escaped, markdown-proof, line breaks as ``<br>``."""
    s = str(value).translate(_BREAKS).translate(_INERT)
    return s.replace("\n", "<br>")


def attr(value: object) -> str:
    """``value`` escaped for a double-quoted HTML attribute."""
    return html.escape(str(value), quote=True)


def trim(value: str, limit: int, *, at_end: bool = True) -> str:
    """``value`` cut to about ``limit`` characters at a word boundary, marked with an ellipsis."""
    if len(value) <= limit:
        return value
    if at_end:
        cut = value[:limit]
        return cut[: cut.rfind(" ")] + " …" if " " in cut[limit // 2 :] else cut + "…"
    cut = value[-limit:]
    return "… " + cut[cut.find(" ") + 1 :] if " " in cut[: limit // 2] else "…" + cut


def safe_url(url: str | None) -> str | None:
    """``url`` if it is a plain http(s) address, else None (never a javascript: link)."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def render_message(message: str) -> str:
    """A check the app did not make (empty or unusable input), said where its result would be,
    in the style of the abstention message, so no earlier verdict stays under the new input."""
    return f'<div class="qa-card qa-message"><p class="qa-refused" role="status">{text(message)}</p></div>'


# --- citations -------------------------------------------------------------------------------


def source_link(doc_id: str, start: int, end: int) -> str:
    """The source-view address that opens ``doc_id`` with ``[start, end)`` highlighted."""
    return "/source?" + urlencode({"doc": doc_id, "start": start, "end": end})


def _open_link(href: str) -> str:
    return (f'<a class="qa-open" href="{attr(href)}" target="_blank" rel="noopener">Open in source'
            f'<span class="qa-sr"> (opens in a new tab)</span></a>')


def _cite_line(citation: Citation, extra: Iterable[str] = ()) -> str:
    bits = [text(format_citation(citation, sep=" · ")), *extra]
    link = source_link(citation.doc_id, citation.span.start, citation.span.end)
    return f'<p class="qa-cite">{" · ".join(bits)} · {_open_link(link)}</p>'



# --- the Ask tab -----------------------------------------------------------------------------


def _answer_in_passage(answer: Answer, passage: Passage | None) -> str:
    """The passage with the answer marked, trimmed to CONTEXT_CHARS on each side."""
    a, p = answer.citation, passage.citation if passage else None
    if p and p.doc_id == a.doc_id and p.span.start <= a.span.start <= a.span.end <= p.span.end:
        before = p.text[: a.span.start - p.span.start]
        after = p.text[a.span.end - p.span.start :]
        marked = p.text[a.span.start - p.span.start : a.span.end - p.span.start]
    else:
        before, after, marked = "", "", a.text
    return (f'<blockquote class="qa-passage">{text(trim(before, CONTEXT_CHARS, at_end=False))}'
            f'<mark class="qa-answer">{_phrase_marked(answer, marked)}</mark>'
            f'{text(trim(after, CONTEXT_CHARS))}</blockquote>')


def _phrase_marked(answer: Answer, marked: str) -> str:
    """The answer's text, with the reader's answer phrase (if any) in <strong> inside it."""
    parts = answer.around_phrase()
    if parts is None or marked != answer.citation.text:
        return text(marked)
    before, phrase, after = parts
    return f'{text(before)}<strong class="qa-phrase" title="answer phrase">{text(phrase)}</strong>{text(after)}'


def _passage_item(passage: Passage, label: str) -> str:
    cite = _cite_line(passage.citation, [text(label)])
    return (f'<li class="qa-other">{cite}'
            f'<p class="qa-snippet">{text(trim(passage.citation.text, SNIPPET_CHARS))}</p></li>')


def _passage_list(passages: Sequence[Passage], summary: str, kind: str) -> str:
    """The passages, collapsed under ``summary``, each labelled with PASSAGE_LABELS[kind]."""
    if not passages:
        return '<p class="qa-none">No passages matched.</p>'
    items = "".join(_passage_item(p, PASSAGE_LABELS[kind]) for p in passages)
    return (f'<details class="qa-others"><summary>{text(summary)} ({len(passages)})'
            f'</summary><ol class="qa-list">{items}</ol></details>')


def render_response(response: Response, turn: Turn | None = None, scope: str = "") -> str:
    """The assistant's chat message for a response: answer in its passage, citation, passages.

    When the assistant abstains it says so, with ``scope`` (what was searched, when the
    document filter was on), and lists the nearest passages as weak matches.
    ``turn`` shows the query that was searched when a follow-up got the conversation's topic,
    and the query with the previous answer's subject when that one was tried and set aside.
    """
    parts = ['<div class="qa-card">']
    if turn is not None and turn.follow_up:
        tried = f' (also tried: “{text(turn.also_tried)}”)' if turn.also_tried else ""
        parts.append(f'<p class="qa-query">Searched for: “{text(turn.query)}”{tried}</p>')
    for notice in response.notices:
        parts.append(f'<p class="qa-notice">{text(notice)}</p>')
    answer = response.answer
    if answer is None:
        searched = f'<span class="qa-scope">{text(scope)}</span> ' if scope else ""
        parts.append(f'<p class="qa-abstain"><strong>{text(ABSTAIN_MESSAGE)}</strong> {searched}'
                     f'The nearest passages are shown as weak matches.</p>')
        parts.append(_passage_list(response.passages, "Weak matches", "weak"))
    else:
        passage = next((p for p in response.passages if p.rank == answer.passage_rank), None)
        parts.append(_answer_in_passage(answer, passage))
        parts.append(_cite_line(answer.citation, [f"confidence {answer.confidence:.2f}"]))
        others = [p for p in response.passages if p.rank != answer.passage_rank]
        parts.append(_passage_list(others, "Other passages", "other"))
    parts.append("</div>")
    return "".join(parts)


def render_user(question: str) -> str:
    """The user's chat message, inert like any other text."""
    return f'<div class="qa-user">{text(question)}</div>'


# --- the Check-a-quote tab -------------------------------------------------------------------


def _diff(ops: Sequence[Mapping[str, str]]) -> str:
    """Word diff from the source to the quote: the source's words struck, the quote's underlined."""
    out = []
    for op in ops:
        kind, quote, source = op.get("op"), op.get("quote", "").strip(), op.get("source", "").strip()
        if kind == "equal":
            out.append(text(source or quote))
            continue
        if source:
            out.append(f'<del title="in the source">{text(source)}</del>')
        if quote:
            out.append(f'<ins title="in the quote">{text(quote)}</ins>')
    return " ".join(part for part in out if part)


def _match_item(match: Mapping[str, Any], meaning: bool = False) -> str:
    context, c_start = match.get("context") or "", match.get("context_start", match["start"])
    lo, hi = match["start"] - c_start, match["end"] - c_start
    if context and 0 <= lo <= hi <= len(context):
        shown = (f'{text(trim(context[:lo], CONTEXT_CHARS, at_end=False))}<mark class="qa-answer">'
                 f'{text(context[lo:hi])}</mark>{text(trim(context[hi:], CONTEXT_CHARS))}')
    else:
        shown = f'<mark class="qa-answer">{text(match["text"])}</mark>'
    similarity = f"{'meaning ' if meaning else ''}similarity {float(match.get('score', 0)):.2f}"
    extra = [f"characters {match['start']}–{match['end']}", similarity]
    if match.get("normalizations"):
        extra.append("after normalising " + text(", ".join(match["normalizations"])))
    cite = _cite_line(Citation.from_dict(match), extra)
    parts = [f'<li class="qa-match">{cite}',
             f'<blockquote class="qa-passage">{shown}</blockquote>']
    if match.get("diff") and not match.get("exact"):
        parts.append(f'<p class="qa-diff"><strong>Differences:</strong> {_diff(match["diff"])}</p>')
    parts.append("</li>")
    return "".join(parts)


def render_quote_check(check: Mapping[str, Any]) -> str:
    """A QuoteCheck (its ``to_dict()``): verdict badge, matches in context with word diffs."""
    verdict = str(check.get("verdict", "absent"))
    label, explanation = VERDICT_LABELS.get(verdict, (verdict.title(), ""))
    parts = [f'<div class="qa-card qa-quote"><p class="qa-verdict-line"><span class="qa-badge qa-{attr(verdict)}" '
             f'role="status">{text(label)}</span> {text(explanation)}'
             f' <span class="qa-score">(score {float(check.get("score", 0)):.2f})</span></p>']
    for notice in check.get("notices") or ():
        parts.append(f'<p class="qa-notice">{text(notice)}</p>')
    matches = check.get("matches") or []
    if any(m.get("diff") and not m.get("exact") for m in matches):
        parts.append('<p class="qa-legend">In the differences, <del>struck</del> words are the source’s and '
                     '<ins>underlined</ins> words are the quote’s.</p>')
    meaning = verdict == "paraphrase"
    if meaning:
        parts.append(f'<p class="qa-closest">{text(PARAPHRASE_NOTE.capitalize())}:</p>')
    if matches:
        parts.append(f'<ol class="qa-list">{"".join(_match_item(m, meaning) for m in matches)}</ol>')
    nearest = [Passage.from_dict(p) if isinstance(p, Mapping) else p for p in check.get("nearest") or ()]
    if nearest:
        parts.append(_passage_list(nearest, "Nearest passages, for context only", "nearest"))
    parts.append("</div>")
    return "".join(parts)


def render_draft_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """The table of a draft's quotations (drafts.table's rows): quotation, verdict, source,
    speaker and a link opening the source at the cited span."""
    cells = []
    for row in rows:
        verdict = str(row["verdict"])
        label = VERDICT_LABELS.get(verdict, (verdict.capitalize(), ""))[0]
        source = text(row["source"] or "—")
        if verdict == "paraphrase":
            source = f"{text(PARAPHRASE_NOTE)}: “{text(trim(row['source_text'], SNIPPET_CHARS))}” — {source}"
        opened = "—"
        if row.get("doc_id"):
            opened = _open_link(source_link(row["doc_id"], row["source_start"], row["source_end"]))
        cells.append([text(row["quotation"]), f'<span class="qa-badge qa-{attr(verdict)}">{text(label)}</span>',
                      source, text(row.get("speaker") or "—"), opened])
    return render_table(["Quotation", "Verdict", "Source", "Speaker", "Link"], cells,
                        f"Quotations in the draft ({len(rows)})", raw=range(5))


# --- the Library and Evaluate tabs -----------------------------------------------------------


def render_metrics(metrics: Iterable[tuple[str, str, str, str]], caption: str) -> str:
    """Named figures as a compact grid (a description list): (name, value, note, explanation) each,
    the note (how many questions) small beside the value, the explanation as the figure's title."""
    items = "".join(f'<div title="{attr(meaning)}"><dt>{text(name)}</dt><dd>{text(value)}'
                    + (f' <span class="qa-n">{text(note)}</span>' if note else "") + "</dd></div>"
                    for name, value, note, meaning in metrics)
    return (f'<section class="qa-metrics-block" aria-label="{attr(caption)}"><h3>{text(caption)}</h3>'
            f'<dl class="qa-metrics">{items}</dl></section>')


def render_comparison(comparison: Mapping[str, Any], a: str, b: str) -> str:
    """Two runs side by side (``compare.compare_files``): what was paired, how the runs were made
    differently, the per-metric table and the questions that flipped, named by run label."""
    q = comparison["questions"]
    notes = [f"A: {a}", f"B: {b}", f"{q['shared']} question(s) in both runs"]
    if comparison.get("differences"):
        notes.append(f"Note: {differences_note(comparison)}")
    notes += [f"{len(q[key])} {label}: {', '.join(q[key])}" for label, key in
              (("only in A", "only_a"), ("only in B", "only_b"), ("with different gold labels", "gold_changed"))
              if q[key]]
    rows = [[name, str(m["n"]), f"{m['a']:.4f}", f"{m['b']:.4f}", f"{m['delta']:+.4f}", str(len(m["better"])),
             str(len(m["worse"])), m["test"], f"{m['p_value']:.4g}", "yes" if m["significant"] else "no"]
            for name, m in comparison["metrics"].items()]
    flipped = [[name, label.replace("->", "→"), str(len(ids)), ", ".join(ids)] for name, label, ids in flips(comparison)]
    return ('<div class="qa-compare">' + "".join(f"<p>{text(note)}</p>" for note in notes)
            + render_table(["Metric", "Questions", "A", "B", "Delta (B − A)", "Better", "Worse", "Test", "p-value",
                            f"Significant (p < {ALPHA})"], rows, "Per metric, paired over the shared questions")
            + (render_table(["Metric", "Flipped", "Questions", "Ids"], flipped, "Questions that flipped") if flipped
               else "<p>No question flipped between the two runs.</p>") + "</div>")


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]], caption: str, *,
                 raw: int | range = -1) -> str:
    """An HTML table; cells are escaped except those of column(s) ``raw`` (already-built HTML)."""
    raw = range(raw, raw + 1) if isinstance(raw, int) else raw
    head = "".join(f'<th scope="col">{text(h)}</th>' for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{cell if i in raw else text(cell)}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return (f'<div class="qa-table-wrap"><table class="qa-table"><caption>{text(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def link(href: str, label: str) -> str:
    """An ``<a>`` to ``href`` opening in a new tab, with an inert label."""
    return (f'<a href="{attr(href)}" target="_blank" rel="noopener">{text(label)}'
            f'<span class="qa-sr"> (opens in a new tab)</span></a>')


def document_link(doc_id: str) -> str:
    """The source-view address of a whole document (no span marked)."""
    return source_link(doc_id, 0, 0).split("&start=")[0]
