"""Corpus folder -> Documents: one loader per format, metadata from a sidecar beside each file.

A document ``notes/a.pdf`` has id ``notes/a``; its optional sidecar ``notes/a.meta.json``
holds title, author, publisher, date and url. A file that cannot be read is reported as
``Skipped`` and the rest of the corpus loads.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.errors import CorpusError
from assistant.types import Document, Metadata

SIDECAR_SUFFIX = ".meta.json"
METADATA_KEYS = ("title", "author", "publisher", "date", "url", "note")


class UnreadableFile(Exception):
    """Raised by a loader for a file it cannot turn into text; the message is the reason."""


class NotText(ValueError):
    """Bytes a user gave that are not UTF-8 text; the message says why ("is not a text file", or
    "is not UTF-8 text (line N ...): save it as UTF-8 and try again"), ``binary`` when they hold
    NUL bytes."""

    def __init__(self, data: bytes, error: UnicodeDecodeError) -> None:
        self.binary = b"\0" in data
        line = data[: error.start].count(b"\n") + 1
        super().__init__("is not a text file" if self.binary else
                         f"is not UTF-8 text (line {line} holds a character in another encoding): "
                         "save it as UTF-8 and try again")


def utf8_text(data: bytes) -> str:
    """``data`` decoded as UTF-8, a byte-order mark dropped; NotText when it is not text."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NotText(data, exc) from exc


@dataclass(frozen=True)
class Skipped:
    """A corpus file that was not loaded, and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class CorpusFile:
    """A loadable file found in the corpus, hashed but not yet parsed."""

    doc_id: str
    path: Path
    relpath: str
    content_hash: str


@dataclass(frozen=True)
class Loaded:
    """What a format loader returns: the text, metadata found in the file, and page starts."""

    text: str
    metadata: dict[str, str]
    page_starts: tuple[int, ...] = ()


def _decode(data: bytes) -> str:
    if b"\x00" in data:
        raise UnreadableFile("looks like a binary file (it contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(f"is not valid UTF-8 (bad byte at offset {exc.start})") from exc


def _first_line_title(text: str) -> dict[str, str]:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return {"title": line} if len(line) <= 150 else {}
    return {}


def load_text(data: bytes) -> Loaded:
    text = _decode(data)
    return Loaded(text, _first_line_title(text))


_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


def load_markdown(data: bytes) -> Loaded:
    text = _decode(data)
    meta: dict[str, str] = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            front = yaml.safe_load(match.group(1))
        except yaml.YAMLError as exc:
            raise UnreadableFile(f"has front matter that is not valid YAML: {exc}") from exc
        if isinstance(front, dict):
            meta = {k: str(front[k]) for k in METADATA_KEYS if front.get(k) is not None}
        text = text[match.end() :]
    return Loaded(text, {**_first_line_title(text), **meta})


_BLOCK_TAGS = {
    "p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table",
    "section", "article", "header", "footer", "blockquote", "pre", "dd", "dt", "figcaption",
}  # fmt: skip


def load_html(data: bytes) -> Loaded:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(data, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(["script", "style", "noscript", "template", "head", "svg"]):
        tag.decompose()
    for tag in soup.find_all(_BLOCK_TAGS):
        tag.insert_before("\n\n")
        tag.insert_after("\n\n")
    raw = soup.get_text()
    paragraphs = (" ".join(block.split()) for block in re.split(r"\n\s*\n", raw))
    text = "\n\n".join(p for p in paragraphs if p)
    meta = {"title": title} if title else _first_line_title(text)
    return Loaded(text, meta)


def load_pdf(data: bytes) -> Loaded:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise UnreadableFile("is a password-protected PDF")
        pages = [page.extract_text() or "" for page in reader.pages]
        info = reader.metadata or {}
    except UnreadableFile:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, OSError) as exc:
        raise UnreadableFile(f"is not a readable PDF ({exc})") from exc
    starts, parts, offset = [], [], 0
    for page in pages:
        starts.append(offset)
        parts.append(page)
        offset += len(page) + 2
    text = "\n\n".join(parts)
    meta = {}
    if info.get("/Title"):
        meta["title"] = str(info["/Title"])
    if info.get("/Author"):
        meta["author"] = str(info["/Author"])
    return Loaded(text, meta or _first_line_title(text), tuple(starts))


def load_docx(data: bytes) -> Loaded:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError, OSError) as exc:
        raise UnreadableFile(f"is not a readable .docx file ({exc})") from exc
    except Exception as exc:  # zipfile.BadZipFile and lxml errors vary by version
        raise UnreadableFile(f"is not a readable .docx file ({exc})") from exc
    blocks = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            blocks.append(" | ".join(cell.text for cell in row.cells))
    text = "\n\n".join(b for b in blocks if b.strip())
    props = document.core_properties
    meta = {k: v for k, v in (("title", props.title), ("author", props.author)) if v}
    return Loaded(text, meta or _first_line_title(text))


LOADERS: dict[str, Callable[[bytes], Loaded]] = {
    ".txt": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name[: -len(path.suffix)] + SIDECAR_SUFFIX)


def _walk(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part.startswith(".") for part in rel.parts):
            continue
        yield path


def _link_problem(link: Path, root: Path) -> str | None:
    """Why a symbolic link in the corpus is not followed, or None for a link to a file inside it."""
    try:
        target = link.resolve(strict=True)
    except (OSError, RuntimeError):  # RuntimeError: a loop, before Python 3.13
        return "is a symbolic link to nothing (its target is missing, or the link is a loop)"
    if not target.is_relative_to(root):
        return "is a symbolic link to outside the corpus (not followed)"
    if target.is_dir():
        return "is a symbolic link to a folder (not followed)"
    return None


def scan(corpus_dir: Path) -> tuple[list[CorpusFile], list[Skipped]]:
    """List the corpus's loadable files with their content hashes, without parsing them.

    Skipped, each with its reason: unsupported extensions, symbolic links that lead outside
    the corpus, to a folder or nowhere, and a file with the same bytes as one before it in
    path order (only the first is indexed). Raises CorpusError when the folder does not exist
    or is not a folder.
    """
    root = Path(corpus_dir)
    if not root.is_dir():
        raise CorpusError(
            f"corpus folder {root} does not exist or is not a folder; "
            "create it and put .txt, .md, .html, .pdf or .docx files in it, or pass --corpus DIR"
        )
    root = root.resolve()
    files: list[CorpusFile] = []
    skipped: list[Skipped] = []
    seen: dict[str, str] = {}
    contents: dict[str, str] = {}  # hash of a file's bytes -> the first file with them
    for path in _walk(root):
        relpath = path.relative_to(root).as_posix()
        if path.name.endswith(SIDECAR_SUFFIX) or path.is_dir() and not path.is_symlink():
            continue
        if path.is_symlink() and (reason := _link_problem(path, root)):
            skipped.append(Skipped(relpath, reason))
            continue
        suffix = path.suffix.lower()
        if suffix not in LOADERS:
            skipped.append(Skipped(relpath, f"has an unsupported extension {suffix or '(none)'}"))
            continue
        if not path.is_file():
            skipped.append(Skipped(relpath, "is not a regular file"))
            continue
        doc_id = relpath[: -len(path.suffix)]
        if doc_id in seen:
            skipped.append(Skipped(relpath, f"has the same document id {doc_id!r} as {seen[doc_id]}"))
            continue
        sidecar = _sidecar(path)
        if sidecar.is_symlink() and (reason := _link_problem(sidecar, root)):
            skipped.append(Skipped(relpath, f"has a metadata file {sidecar.name} that {reason}"))
            continue
        try:
            data = path.read_bytes()
            digest = hashlib.sha256(data)
            same = digest.hexdigest()
            if sidecar.is_file():
                digest.update(b"\0sidecar\0" + sidecar.read_bytes())
        except OSError as exc:
            skipped.append(Skipped(relpath, f"cannot be read ({exc.strerror or exc})"))
            continue
        # The same bytes under two names would answer every question twice: the first in
        # path order is indexed. Empty files are left to load_file, which reports them.
        if data and same in contents:
            skipped.append(Skipped(relpath, f"has the same content as {contents[same]}, which is indexed instead"))
            continue
        contents.setdefault(same, relpath)
        seen[doc_id] = relpath
        files.append(CorpusFile(doc_id, path, relpath, digest.hexdigest()))
    return files, skipped


def _read_sidecar(path: Path) -> dict[str, str]:
    sidecar = _sidecar(path)
    if not sidecar.is_file():
        return {}
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UnreadableFile(f"has a metadata file {sidecar.name} that is not valid JSON ({exc})")
    if not isinstance(data, dict):
        raise UnreadableFile(f"has a metadata file {sidecar.name} that is not a JSON object")
    return {k: str(data[k]) for k in METADATA_KEYS if data.get(k) not in (None, "")}


def load_file(file: CorpusFile) -> Document:
    """Parse one corpus file into a Document. Raises UnreadableFile with the reason."""
    try:
        data = file.path.read_bytes()
    except OSError as exc:
        raise UnreadableFile(f"cannot be read ({exc.strerror or exc})") from exc
    if not data:
        raise UnreadableFile("is empty (zero bytes)")
    loaded = LOADERS[file.path.suffix.lower()](data)
    if not loaded.text.strip():
        raise UnreadableFile("contains no text")
    fields = {"title": Path(file.relpath).stem, **loaded.metadata, **_read_sidecar(file.path)}
    return Document(
        doc_id=file.doc_id,
        path=file.relpath,
        text=loaded.text,
        metadata=Metadata.from_dict(fields),
        content_hash=file.content_hash,
        page_starts=loaded.page_starts,
    )


def load_corpus(corpus_dir: Path) -> tuple[list[Document], list[Skipped]]:
    """Load every readable document of the corpus; unreadable files come back as Skipped."""
    files, skipped = scan(corpus_dir)
    documents = []
    for file in files:
        try:
            documents.append(load_file(file))
        except UnreadableFile as exc:
            skipped.append(Skipped(file.relpath, str(exc)))
    return documents, skipped
