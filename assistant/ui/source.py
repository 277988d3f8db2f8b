"""The source view: one corpus document, its metadata and full text, the cited span marked.

Served at ``/source?doc=DOC_ID&start=S&end=E`` (``assistant.ui.render.source_link``). Documents are
looked up by id among the documents of the loaded index, never on the file system, so no
path of any kind (``../``, absolute, encoded) can reach a file: an id that is not in the
index is refused with 404. The text shown is the text the offsets point into.

The page is plain server-rendered HTML with every piece of document text escaped, sent with a
Content-Security-Policy that allows only its own nonce-marked style and one-line script (which
scrolls the cited span into view) and no other script, image, font or connection at all.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from assistant.types import Citation, Document, Span, format_citation
from assistant.ui.render import attr, safe_url

# A plain HTML page: no markdown or template engine reads it, so HTML escaping is enough.
inert = attr

MAX_ID_SHOWN = 120

_CSS = """
body{font:16px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1f2328;background:#fff;
overflow-wrap:anywhere}
header,main{max-width:54rem;margin:0 auto;padding:1rem}
header{border-bottom:1px solid #d0d7de}
h1{font-size:1.4rem;margin:.5rem 0}
.sub{font-size:1rem;margin:.5rem 0}
dl{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:.2rem .8rem;margin:.5rem 0}
dt{font-weight:600}dd{margin:0;overflow-wrap:anywhere}
.doc{white-space:pre-wrap;overflow-wrap:anywhere;word-break:break-word;font:inherit;margin:0}
mark{background:#ffe58f;color:#000;padding:.1em 0;outline:2px solid #d4a106;scroll-margin:30vh}
mark:focus{outline:3px solid #0550ae}
.refused{border:2px solid #cf222e;padding:1rem;border-radius:6px}
a{color:#0550ae}
@media (prefers-color-scheme:dark){body{background:#0d1117;color:#e6edf3}a{color:#6cb6ff}
header{border-color:#30363d}mark{background:#6b5300;color:#fff}}
"""


@dataclass(frozen=True)
class Page:
    """An HTML page to send, with its status code and the nonce its CSP allows."""

    status: int
    html: str
    nonce: str

    @property
    def headers(self) -> dict[str, str]:
        """Security headers: nothing but this page's own style and script may run or load."""
        return {
            "Content-Security-Policy": (
                f"default-src 'none'; style-src 'nonce-{self.nonce}'; script-src 'nonce-{self.nonce}'; "
                "img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'"
            ),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        }


def _page(title: str, body: str, status: int = 200, *, script: str = "") -> Page:
    nonce = secrets.token_urlsafe(16)
    tail = f'<script nonce="{nonce}">{script}</script>' if script else ""
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{inert(title)}</title><style nonce=\"{nonce}\">{_CSS}</style></head>"
        f'<body>{body}{tail}</body></html>'
    )
    return Page(status, document, nonce)


def refused(message: str, status: int) -> Page:
    """A page that explains why a document cannot be shown."""
    body = (f'<main><h1>Source not available</h1><p class="refused" role="alert" id="refused">{inert(message)}</p>'
            '<p><a href="/">Back to the assistant</a></p></main>')
    return _page("Source not available", body, status)


def _offset(value: str | None, name: str, length: int) -> int | None:
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise ValueError(f"{name} must be a whole number of characters, got {value[:20]!r}")
    number = int(value)
    if number > length:
        raise ValueError(f"{name} is past the end of the document ({length} characters), got {number}")
    return number


def source_page(documents: dict[str, Document], doc: str | None, start: str | None = None,
                end: str | None = None) -> Page:
    """The page for ``doc`` with ``[start, end)`` marked; a refusal page for anything else.

    404 when ``doc`` is not the id of a loaded document (whatever path it spells),
    400 when the offsets are not a span of that document.
    """
    if not doc:
        return refused("No document was named: open a source from an answer, a passage or a quote match.", 400)
    document = documents.get(doc)
    if document is None:
        shown = doc if len(doc) <= MAX_ID_SHOWN else doc[:MAX_ID_SHOWN] + "…"
        return refused(f"“{shown}” is not a document of this corpus. Only corpus documents can be opened.", 404)
    length = len(document.text)
    try:
        lo = _offset(start, "start", length)
        hi = _offset(end, "end", length)
    except ValueError as exc:
        return refused(str(exc), 400)
    if lo is not None and hi is None:
        hi = lo
    if hi is not None and lo is None:
        lo = hi
    if lo is not None and hi is not None and lo > hi:
        return refused(f"start ({lo}) must not be after end ({hi})", 400)
    return _document_page(document, lo, hi)


def _document_page(document: Document, lo: int | None, hi: int | None) -> Page:
    meta = document.metadata
    rows = [("Author", meta.author), ("Publisher", meta.publisher), ("Date", meta.date),
            ("File", document.path), ("Document id", document.doc_id), ("Length", f"{len(document.text):,} characters"),
            ("Note", meta.note)]
    items = "".join(f"<dt>{inert(k)}</dt><dd>{inert(v)}</dd>" for k, v in rows if v)
    url = safe_url(meta.url)
    if url:
        items += f'<dt>Link</dt><dd><a href="{attr(url)}" rel="noopener noreferrer nofollow">{inert(url)}</a></dd>'
    elif meta.url:
        items += f"<dt>Link</dt><dd>{inert(meta.url)}</dd>"
    body = ['<header><p><a href="/">← Back to the assistant</a></p>',
            f'<h1 id="title">{inert(meta.title)}</h1><dl>{items}</dl>']
    script = ""
    if lo is not None and hi is not None:
        page = document.page_at(lo)
        where = f"characters {lo}–{hi}" + (f", page {page}" if page is not None else "")
        cite = format_citation(Citation.of(document, Span(lo, hi)), sep=" · ")
        body.append(f'<p id="span-info">Cited span: {inert(where)}. <a href="#cited">Go to the cited span</a></p>'
                    f'<p class="cite">{inert(cite)}</p>')
        text = (f"{inert(document.text[:lo])}<mark id=\"cited\" tabindex=\"-1\" aria-label=\"cited span\">"
                f"{inert(document.text[lo:hi])}</mark>{inert(document.text[hi:])}")
        script = ("var m=document.getElementById('cited');"
                  "m.scrollIntoView({block:'center'});m.focus({preventScroll:true});")
    else:
        text = inert(document.text)
    body.append("</header>")
    body.append(f'<main><h2 class="sub">Full text</h2>'
                f'<div class="doc" id="doc" role="document" aria-label="Full text">{text}</div></main>')
    return _page(f"{meta.title} — source", "".join(body), script=script)
