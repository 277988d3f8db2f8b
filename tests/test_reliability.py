"""Bad questions, bad quotes and bad corpora: a clear message or a normal answer, never a crash.

Questions and quotes go through the FakeEncoder, except odd scripts, emoji and other languages,
which also go through the real model (its tokenizer is where odd text used to break); corpora
are indexed with the FakeEncoder, the huge one with a cached variant of it.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import assistant.embedding
from assistant.chunking import SentenceSplitter
from assistant.cli import main
from assistant.config import Settings
from assistant.errors import InputError
from assistant.pipeline import Assistant, Response
from assistant.store import build_index, load_index
from conftest import DATA, FakeEncoder, make_pdf

GLACIER = "How fast does the glacier retreat?"


def _mini(root: Path, encoder, model: str) -> Assistant:
    shutil.copytree(DATA / "mini", root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", model=model)
    build_index(settings, encoder)
    return Assistant.open(settings, encoder)


@pytest.fixture(scope="module")
def mini(tmp_path_factory: pytest.TempPathFactory) -> Assistant:
    """The mini corpus indexed with the FakeEncoder (answers still come from the shipped reader)."""
    return _mini(tmp_path_factory.mktemp("mini"), FakeEncoder(), "fake-encoder")


@pytest.fixture(scope="module")
def mini_real(tmp_path_factory: pytest.TempPathFactory, real_encoder) -> Assistant:
    """The mini corpus indexed with the real model, for odd text through its tokenizer."""
    return _mini(tmp_path_factory.mktemp("mini-real"), real_encoder, real_encoder.name)


def assert_grounded(assistant: Assistant, response: Response) -> None:
    """Passages (and the answer, if any) are verbatim spans of the indexed documents."""
    assert response.passages, "no passages at all"
    for passage in response.passages:
        cited = passage.citation
        assert assistant.index.by_id[cited.doc_id].text[cited.span.start : cited.span.end] == cited.text
    if response.answer:
        cited = response.answer.citation
        assert assistant.index.by_id[cited.doc_id].text[cited.span.start : cited.span.end] == cited.text


# --- questions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("question", ["", "   \t\n  ", "\x00\x01\x1b\x7f", "\u200b\u200b", "\ud800"])
def test_empty_question_is_refused_with_a_message(mini: Assistant, question: str) -> None:
    with pytest.raises(InputError, match="the question is empty: type a question"):
        mini.ask(question)


@pytest.mark.parametrize("question", [None, 42, b"bytes"])
def test_question_that_is_not_text_is_refused(mini: Assistant, question: object) -> None:
    with pytest.raises(InputError, match="the question must be text"):
        mini.ask(question)  # type: ignore[arg-type]


def test_megabyte_question_is_cut_to_the_limit_with_a_notice(mini: Assistant) -> None:
    limit = mini.settings.max_question_chars
    pasted = (GLACIER + " ") * (1_000_000 // (len(GLACIER) + 1))
    response = mini.ask(pasted)
    assert response.question == pasted.strip()[:limit]
    assert response.notices == [f"the question was longer than {limit} characters and was cut to that length"]
    assert_grounded(mini, response)
    assert response.passages[0].citation.doc_id == "notes"


def test_control_characters_are_ignored(mini: Assistant) -> None:
    clean = mini.ask(GLACIER)
    dirty = mini.ask("\x00How fast\x07 does the\x1b[0m glacier\x7f retreat?\x0c")
    assert not re.search(r"[\x00-\x08\x0e-\x1f\x7f]", dirty.question)
    assert dirty.passages[0].citation.doc_id == clean.passages[0].citation.doc_id == "notes"
    assert dirty.notices == []


@pytest.mark.parametrize("question", [
    "🧊🏔️ How fast does the glacier retreat? 🤔👨‍👩‍👧",
    "How fast does the ледник retreat, 冰川 在 退缩 吗? ﷽",
    "How fast does the glacier \ud83d retreat?",  # half an emoji: a lone surrogate, as JSON allows
    "¿A qué velocidad retrocede el glaciar?",
    "氷河はどのくらいの速さで後退していますか？",
    "ما مدى سرعة تراجع النهر الجليدي؟",
    "?!?! ... ---",
])
def test_mixed_scripts_emoji_and_other_languages_get_a_normal_response(mini_real: Assistant, question: str) -> None:
    response = mini_real.ask(question)
    assert_grounded(mini_real, response)
    assert response.to_dict()["question"] == response.question  # serialisable for the app and --json


def test_question_with_emoji_keeps_it(mini: Assistant) -> None:
    response = mini.ask("🧊 How fast does the glacier retreat?")
    assert response.question.startswith("🧊") and response.passages[0].citation.doc_id == "notes"


# --- quotes ---------------------------------------------------------------------------------------


SENTENCE = "The Perito Moreno glacier advances about two metres per day."


def test_megabyte_quote_is_refused_at_once_with_the_limit(mini: Assistant) -> None:
    quote = "the glacier retreats ten metres a year " * 27_000
    with pytest.raises(InputError, match=r"the quote is \d+ characters long; check at most 20000 at a time"):
        mini.check_quote(quote)


def test_long_quote_within_the_limit_gets_a_verdict(mini: Assistant) -> None:
    quote = " ".join([SENTENCE] * (19_000 // (len(SENTENCE) + 1)))
    check = mini.check_quote(quote)
    assert check.verdict in ("altered", "paraphrase", "absent") and 0 <= check.score < 1  # never verified


@pytest.mark.parametrize("junk", ["\x00", "\x07", "\x1b", "\x7f", "\x85"])
def test_control_characters_in_a_quote_do_not_hide_a_verbatim_match(mini: Assistant, junk: str) -> None:
    words = SENTENCE.split(" ")
    quote = " ".join(words[:2]) + junk + " " + " ".join(words[2:])
    check = mini.check_quote(quote)
    assert check.verdict == "verbatim"
    cited = check.matches[0].citation
    assert mini.index.by_id[cited.doc_id].text[cited.span.start : cited.span.end] == SENTENCE


@pytest.mark.parametrize("quote", [
    "🧊 The glacier retreats 🏔️ every year ✨ according to the notes",
    "The glacier \ud83d retreats every year according to the notes",
    "Ледник отступает на десять метров в год",
    "冰川 每年 后退 十 米 左右",
])
def test_odd_quotes_get_a_verdict(mini_real: Assistant, quote: str) -> None:
    check = mini_real.check_quote(quote)
    assert check.verdict in ("verbatim", "altered", "paraphrase", "absent")
    assert check.to_dict()["verdict"] == check.verdict
    for cited in (match.citation for match in check.matches):
        assert mini_real.index.by_id[cited.doc_id].text[cited.span.start : cited.span.end] == cited.text


@pytest.mark.parametrize("quote, message", [
    ("", "fewer than 4 words"),
    ("  \n\t ", "fewer than 4 words"),
    ("\x00\x01\x02", "fewer than 4 words"),
    (". . . … [...]", "fewer than 4 words"),
    (None, "the quote must be text"),
])
def test_unusable_quote_is_refused_with_a_message(mini: Assistant, quote: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        mini.check_quote(quote)  # type: ignore[arg-type]


def test_cli_quote_errors_exit_2_with_a_message(mini: Assistant, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = ["--corpus", str(mini.settings.corpus_dir), "--index", str(mini.settings.index_dir)]
    big = tmp_path / "big.txt"
    big.write_text("the glacier retreats " * 60_000, encoding="utf-8")
    result = _fake_cli(monkeypatch, "quote", "--file", str(big), *dirs)
    assert result.exit_code == 2 and "check at most 20000" in result.stderr and "Traceback" not in result.output
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café crème brûlée au citron".encode("latin-1"))
    result = _fake_cli(monkeypatch, "quote", "--file", str(latin), *dirs)
    assert result.exit_code == 2 and f"cannot read the quote from {latin}" in result.stderr


# --- bad corpora ----------------------------------------------------------------------------------


def _fake_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> object:
    """`assistant ARGS` in this process, with the FakeEncoder in place of the model."""
    monkeypatch.setattr(assistant.embedding, "SentenceTransformerEncoder", lambda *a, **k: FakeEncoder())
    return CliRunner().invoke(main, [*args, "--model", "fake-encoder"], catch_exceptions=False)


def _locked_pdf() -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(["The vault code is 4711."]))))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


GOOD = {"good": "The lighthouse keeper counts ships every night.\n",
        "notes": "# Notes\n\nThe harbour opens at dawn, and the ferry leaves at nine.\n"}


@pytest.fixture
def bad_corpus(tmp_path: Path) -> Path:
    """Three readable documents among every kind of file that cannot or must not be read."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text(GOOD["good"])
    (corpus / "notes.md").write_text(GOOD["notes"])
    (corpus / "lantern.pdf").write_bytes(make_pdf(["The amber lantern hangs in the great hall."]))
    (corpus / "binary.txt").write_bytes(bytes(range(256)) * 8)
    (corpus / "zero.txt").write_bytes(b"")
    (corpus / "latin1.md").write_bytes("Caf\xe9 cr\xe8me au citron.".encode("latin-1"))
    (corpus / "locked.pdf").write_bytes(_locked_pdf())
    (corpus / "corrupt.pdf").write_bytes(make_pdf(["The amber lantern hangs in the great hall."])[:200])
    (corpus / "same-as-good.txt").write_text(GOOD["good"])
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("The vault code is 4711.")
    (corpus / "secret.txt").symlink_to(outside / "secret.txt")
    (corpus / "outside-folder").symlink_to(outside, target_is_directory=True)
    (corpus / "loop.txt").symlink_to(corpus / "loop.txt")
    (corpus / "dangling.md").symlink_to(corpus / "missing.md")
    (corpus / "inside-link.txt").symlink_to(corpus / "good.txt")
    return corpus


REASONS = {
    "binary.txt": "looks like a binary file",
    "zero.txt": "is empty (zero bytes)",
    "latin1.md": "is not valid UTF-8",
    "locked.pdf": "is a password-protected PDF",
    "corrupt.pdf": "is not a readable PDF",
    "same-as-good.txt": "has the same content as good.txt, which is indexed instead",
    "inside-link.txt": "has the same content as good.txt, which is indexed instead",
    "secret.txt": "is a symbolic link to outside the corpus (not followed)",
    "outside-folder": "is a symbolic link to outside the corpus (not followed)",
    "loop.txt": "is a symbolic link to nothing",
    "dangling.md": "is a symbolic link to nothing",
}


def test_bad_files_are_reported_and_the_rest_indexed(bad_corpus: Path, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    index_dir = tmp_path / "index"
    result = _fake_cli(monkeypatch, "index", "--corpus", str(bad_corpus), "--index", str(index_dir))
    assert result.exit_code == 0, result.output
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: skipped ")]
    assert len(warnings) == len(REASONS), result.stderr
    for path, reason in REASONS.items():
        assert any(line.startswith(f"warning: skipped {path}: {path} {reason}") for line in warnings), path
    index = load_index(index_dir)
    assert sorted(d.doc_id for d in index.documents) == ["good", "lantern", "notes"]
    assert all("4711" not in d.text for d in index.documents)  # nothing outside the corpus was read
    assert index.by_id["good"].text == GOOD["good"]


def test_unreadable_files_are_not_counted_as_indexed_or_new(bad_corpus: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = ["--corpus", str(bad_corpus), "--index", str(tmp_path / "index")]
    result = _fake_cli(monkeypatch, "index", *dirs)
    assert "indexed 3 document(s): 3 added" in result.stdout
    result = _fake_cli(monkeypatch, "index", "--check", *dirs)
    assert result.exit_code == 0 and "index is up to date" in result.stdout


def test_duplicate_is_indexed_once_and_takes_over_when_the_first_goes(bad_corpus: Path, tmp_path: Path) -> None:
    settings = Settings(corpus_dir=bad_corpus, index_dir=tmp_path / "index", model="fake-encoder")
    build_index(settings, FakeEncoder())
    assistant = Assistant.open(settings, FakeEncoder())
    passages = assistant.ask("lighthouse keeper counts ships", k=5).passages
    assert [p.citation.text for p in passages].count(GOOD["good"].strip()) == 1  # not answered twice
    (bad_corpus / "good.txt").unlink()
    (bad_corpus / "inside-link.txt").unlink()
    report = build_index(settings, FakeEncoder())
    assert "same-as-good" in report.added and report.deleted == ["good"]
    documents = {d.doc_id: d for d in load_index(settings.index_dir).documents}
    assert sorted(documents) == ["lantern", "notes", "same-as-good"]
    assert documents["same-as-good"].text == GOOD["good"]


def test_empty_missing_and_unreadable_corpus_exit_2_naming_each_file(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    index = ["--index", str(tmp_path / "index")]
    (tmp_path / "empty").mkdir()
    result = _fake_cli(monkeypatch, "index", "--corpus", str(tmp_path / "empty"), *index)
    assert result.exit_code == 2
    assert f"error: no readable documents in {tmp_path / 'empty'}; add .txt, .md" in result.stderr

    result = _fake_cli(monkeypatch, "index", "--corpus", str(tmp_path / "missing"), *index)
    assert result.exit_code == 2
    assert f"error: corpus folder {tmp_path / 'missing'} does not exist" in result.stderr

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "zero.txt").write_bytes(b"")
    (bad / "binary.md").write_bytes(b"\x00\x01\x02")
    (bad / "image.png").write_bytes(b"\x89PNG")
    result = _fake_cli(monkeypatch, "index", "--corpus", str(bad), *index)
    assert result.exit_code == 2 and "(3 file(s) skipped)" in result.stderr
    for line in ("skipped zero.txt: zero.txt is empty", "skipped binary.md: binary.md looks like a binary file",
                 "skipped image.png: image.png has an unsupported extension .png"):
        assert f"warning: {line}" in result.stderr
    assert not (tmp_path / "index" / "CURRENT").exists()


class CachedFakeEncoder(FakeEncoder):
    """The FakeEncoder's vectors, with each word's bucket hashed once (a huge text repeats words)."""

    @staticmethod
    @functools.cache
    def _bucket(word: str) -> int:
        return int(hashlib.md5(word.encode()).hexdigest(), 16) % FakeEncoder.dimension

    def encode(self, texts: list[str], *, progress: bool = False, desc: str = "") -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, self._bucket(word)] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1, norms)


PLANTED = "The lighthouse keeper of Quillmoor counted exactly 4711 ships in the winter of 1911."


def test_huge_document_is_indexed_and_searchable(tmp_path: Path) -> None:
    """A 12 MB document (paragraphs) and a 2 MB one-line document index in one build."""
    import random

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "small.txt").write_text("Sea otters hold hands while they sleep.")
    rng = random.Random(7)
    vocabulary = "river flows past old mills and quiet towns where bakers rise early to knead bread".split()
    paragraphs = [" ".join(" ".join(rng.choices(vocabulary, k=15)).capitalize() + "." for _ in range(5))
                  for _ in range(50)]
    body = "\n\n".join(paragraphs) + "\n\n"
    copies = 12_000_000 // len(body) + 1
    (corpus / "huge.txt").write_text(body * (copies // 2) + PLANTED + "\n\n" + body * (copies - copies // 2),
                                     encoding="utf-8")
    (corpus / "one-line.txt").write_text(" ".join(paragraphs) * 100, encoding="utf-8")  # no line break
    assert (corpus / "huge.txt").stat().st_size > 12_000_000 and (corpus / "one-line.txt").stat().st_size > 2_000_000

    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", model="fake-encoder")
    report = build_index(settings, CachedFakeEncoder())
    assert sorted(report.added) == ["huge", "one-line", "small"] and report.skipped == []
    assistant = Assistant.open(settings, CachedFakeEncoder())
    index = assistant.index
    longest = SentenceSplitter().window
    for number in (0, len(index.sentence_rows) // 2, len(index.sentence_rows) - 1):
        doc, span = index.sentence(number)
        assert 0 < span.end - span.start <= longest and doc.text[span.start : span.end].strip()
    huge = index.by_id["huge"]
    assert huge.text == (corpus / "huge.txt").read_text(encoding="utf-8")
    rows = index.chunk_rows[index.chunk_rows[:, 0] == index.documents.index(huge)]
    assert (rows[:, 1] < rows[:, 2]).all() and rows[-1, 2] <= len(huge.text)

    response = assistant.ask("How many ships did the lighthouse keeper of Quillmoor count?")
    top = response.passages[0].citation
    assert top.doc_id == "huge" and PLANTED in top.text
    assert assistant.ask("Do sea otters hold hands?").passages[0].citation.doc_id == "small"


def test_sentence_windows_give_the_same_sentences_and_lose_no_text() -> None:
    """A line longer than the window is split exactly as a whole; an endless sentence is cut."""
    import random

    rng = random.Random(3)
    pool = ["Dr. Smith met Mr. Jones at 5 p.m. on the pier.", "He said “it is 1.2 km away.”", "Why?",
            "The U.S. team won (again).", "Prices rose by 3.5% in Q2... then fell!", "See e.g. chapter 4."]
    line = " ".join(rng.choice(pool) for _ in range(300))
    whole = SentenceSplitter(window=len(line) + 1).split(line)
    assert SentenceSplitter(window=400).split(line) == whole
    assert len(whole) > 300

    endless = "word " * 3000 + "end."
    spans = SentenceSplitter(window=400).split(endless)
    assert all(s.end - s.start <= 400 for s in spans)
    assert "".join(endless[s.start : s.end] for s in spans).replace(" ", "") == endless.replace(" ", "")
    text = "He said “stop.” Then he left!  Next?yes. Last"
    fast = SentenceSplitter(fast_above=10).split(text)  # the plain rule of book-length documents
    assert [text[s.start : s.end] for s in fast] == ["He said “stop.”", "Then he left!", "Next?yes.", "Last"]
