from __future__ import annotations

import hashlib
from pathlib import Path

from assistant.corpus import load_corpus, scan

# SHA-256 of the seed documents as they were handed to the project: corpus/ must hold them unchanged.
SEED_SHA256 = {
    "000_e5c0c9823818600b.txt": "9cdec2af5c6196de0cd8c2267c2852c0ba1505e89cad17b44cb1c6f0a4a92729",
    "001_c4102580e4b6b722.txt": "b9107377053bae5b3116cbbf18ce658e9aafb6a9876759240d52236aa9fc7f12",
    "004_839b94e0d721e6c8.txt": "e007ca06e3d67cbb7e779f0e44245c954cf7a2ea7483386d1e671c2336ef1eb2",
}


def test_every_format_loads_with_metadata(mini_corpus: Path) -> None:
    docs, skipped = load_corpus(mini_corpus)
    by_id = {d.doc_id: d for d in docs}
    assert skipped == []
    assert set(by_id) == {"repeat", "notes", "page", "report", "memo"}

    notes = by_id["notes"]
    assert notes.metadata.title == "Field Notes on Glaciers"
    assert notes.metadata.author == "Ana Pérez"
    assert notes.text.startswith("# Glaciers")  # front matter is metadata, not text
    assert "“Ice talks,”" in notes.text

    page = by_id["page"]
    assert page.metadata.title == "The Copper Mine Report"
    assert page.metadata.url == "https://example.org/copper"
    assert page.source == "https://example.org/copper"
    assert "window.evil" not in page.text and "color: red" not in page.text
    assert "produced 1.2 million tonnes last year." in page.text

    report = by_id["report"]
    assert report.page_starts == (0, report.text.index("Page two"))
    assert report.page_at(report.text.index("violet")) == 2
    assert report.page_at(0) == 1

    memo = by_id["memo"]
    assert memo.metadata.title == "Budget Memo"
    assert "The budget grew by 7 percent in 2023." in memo.text
    assert by_id["repeat"].page_at(5) is None


def test_text_is_exactly_the_file(tmp_path: Path) -> None:
    raw = "Line one\r\nLine two — “quoted”\r\n".encode()
    (tmp_path / "a.txt").write_bytes(raw)
    docs, _ = load_corpus(tmp_path)
    assert docs[0].text == raw.decode()


def test_unreadable_files_are_skipped_with_reasons(mini_corpus: Path) -> None:
    (mini_corpus / "binary.txt").write_bytes(b"\x00\x01\x02abc")
    (mini_corpus / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    (mini_corpus / "empty.md").write_bytes(b"")
    (mini_corpus / "broken.pdf").write_bytes(b"%PDF-1.4 this is not a pdf")
    (mini_corpus / "bad.docx").write_bytes(b"PK\x03\x04 not a zip")
    (mini_corpus / "image.png").write_bytes(b"\x89PNG")
    docs, skipped = load_corpus(mini_corpus)
    reasons = {s.path: s.reason for s in skipped}
    assert "binary" in reasons["binary.txt"]
    assert "UTF-8" in reasons["latin1.txt"]
    assert "empty" in reasons["empty.md"]
    assert "PDF" in reasons["broken.pdf"]
    assert ".docx" in reasons["bad.docx"]
    assert "unsupported" in reasons["image.png"]
    assert len(docs) == 5  # the rest of the corpus still loads


def test_ids_are_relative_paths_without_extension(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "x.md").write_text("hello there")
    (tmp_path / "sub" / "x.txt").write_text("same id")
    files, skipped = scan(tmp_path)
    assert [f.doc_id for f in files] == ["sub/x"]
    assert "same document id" in skipped[0].reason


def test_seed_corpus_is_byte_identical_and_has_metadata() -> None:
    from conftest import REPO

    assert len(SEED_SHA256) == 3
    for name, digest in SEED_SHA256.items():
        assert hashlib.sha256((REPO / "corpus" / name).read_bytes()).hexdigest() == digest, name
    docs, skipped = load_corpus(REPO / "corpus")
    assert skipped == []
    titles = {d.doc_id: d.metadata for d in docs}
    assert titles["000_e5c0c9823818600b"].title == "Exploring AI, Diplomacy, and Multilateralism in Korea"
    assert titles["001_c4102580e4b6b722"].author == "Damilola Banjo"
    assert titles["004_839b94e0d721e6c8"].author == "Omar El Sayed"
