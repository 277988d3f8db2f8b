"""Command-line defects, each checked as a user meets it: output paths checked before a run, an
--out that is its own input, file errors and hints in the user's words, an unknown model, an index
of another backend, a closed stdout, an empty quote and a --doc given as a file name.

Commands run in this process with the FakeEncoder and no reader (``_fake_cli``), except the
unknown model (the real loader is what is tested) and the closed stdout (a subprocess through
tests/fake_indexer.py, the real entry point with the FakeEncoder).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import assistant.embedding
from assistant.cli import _index_command, main
from assistant.config import Settings
from assistant.store import build_index, current_version
from conftest import DATA, REPO, FakeEncoder

QUESTION = '{"id": "q1", "question": "How fast does the glacier advance?", "answers": [], "sources": []}\n'
DRAFT = "The guide said “The Perito Moreno glacier advances about two metres per day.”\n"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """The mini corpus indexed with the FakeEncoder; tests that change it work on a copy."""
    root = tmp_path_factory.mktemp("mini")
    shutil.copytree(DATA / "mini", root / "corpus")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", model="fake-encoder")
    build_index(settings, FakeEncoder())
    return settings


def _copy(built: Settings, root: Path, index_name: str = "index") -> Settings:
    """A copy of the built corpus and index under ``root``, to change."""
    shutil.copytree(built.corpus_dir, root / "corpus")
    shutil.copytree(built.index_dir, root / index_name)
    return built.with_(corpus_dir=root / "corpus", index_dir=root / index_name)


def _dirs(settings: Settings) -> list[str]:
    return ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]


def _fake_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> object:
    """`assistant ARGS --model fake-encoder --reader none` in this process, with the FakeEncoder."""
    monkeypatch.setattr(assistant.embedding, "SentenceTransformerEncoder", lambda *a, **k: FakeEncoder())
    return CliRunner().invoke(main, [*args, "--model", "fake-encoder", "--reader", "none"], catch_exceptions=False)


def _plain(result: object) -> None:
    """An error in the user's words: exit 2, no traceback, no Python wording."""
    assert result.exit_code == 2, result.output
    for python in ("Traceback", "Errno", "codec", "Error:"):
        assert python not in result.output, result.output


# --- 1. output paths are checked before the run ---------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (["eval", "q.jsonl", "--out", "blocker/res.jsonl"],
     "cannot write results to “blocker/res.jsonl”: “blocker” is a file, not a folder"),
    (["eval", "q.jsonl", "--report-dir", "blocker/run"],
     "cannot write the report to “blocker/run”: “blocker” is a file, not a folder"),
    (["eval", "q.jsonl", "--trec", "blocker/trec"],
     "cannot write the TREC files to “blocker/trec”: “blocker” is a file, not a folder"),
    (["quote", "--file", "draft.txt", "--out", "blocker/x.csv"],
     "cannot write the table to “blocker/x.csv”: “blocker” is a file, not a folder"),
    (["eval", "q.jsonl", "--out", "/proc/nope/x.jsonl"], "cannot write results to “/proc/nope/x.jsonl”: "),
], ids=["eval-out", "report-dir", "trec", "quote-out", "proc"])
def test_unwritable_output_is_refused_before_the_run(built: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    args: list[str], message: str) -> None:
    monkeypatch.chdir(tmp_path)
    Path("blocker").write_text("a file\n")
    Path("q.jsonl").write_text(QUESTION, encoding="utf-8")
    Path("draft.txt").write_text(DRAFT, encoding="utf-8")
    result = _fake_cli(monkeypatch, *args, *_dirs(built))
    _plain(result)
    assert f"error: {message}" in result.stderr
    assert "Evaluating" not in result.stderr  # nothing was run


def test_output_folders_are_made_and_written(built: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("q.jsonl").write_text(QUESTION, encoding="utf-8")
    result = _fake_cli(monkeypatch, "eval", "q.jsonl", "--out", "new/res.jsonl", "--trec", "new/trec", *_dirs(built))
    assert result.exit_code == 0, result.output
    assert json.loads(Path("new/res.jsonl").read_text(encoding="utf-8"))["id"] == "q1"
    assert Path("new/trec/run.trec").is_file()


# --- 2. --out is not the input file ---------------------------------------------------------------


def test_out_that_is_the_input_is_refused(built: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("d.txt").write_text(DRAFT, encoding="utf-8")
    Path("s.jsonl").write_text(QUESTION, encoding="utf-8")
    result = _fake_cli(monkeypatch, "quote", "--file", "d.txt", "--out", "d.txt", *_dirs(built))
    _plain(result)
    assert "error: --out would overwrite the draft “d.txt”; choose another file" in result.stderr
    result = _fake_cli(monkeypatch, "eval", "s.jsonl", "--out", "./s.jsonl", *_dirs(built))
    _plain(result)
    assert "error: --out would overwrite the question set “s.jsonl”; choose another file" in result.stderr
    assert Path("d.txt").read_text(encoding="utf-8") == DRAFT
    assert Path("s.jsonl").read_text(encoding="utf-8") == QUESTION


# --- 3. file errors in the user's words -----------------------------------------------------------


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read the quote from nosuch.txt: it does not exist"),
    ("café crème brûlée au citron".encode("latin-1"), "cannot read the quote from nosuch.txt: it is not UTF-8 text "
                                                       "(line 1 holds a character in another encoding)"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\xf0\xff" * 4, "cannot read the quote from nosuch.txt: it is not a text file"),
], ids=["missing", "latin-1", "binary"])
def test_quote_file_errors_are_in_plain_words(built: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              content: bytes | None, message: str) -> None:
    monkeypatch.chdir(tmp_path)
    if content is not None:
        Path("nosuch.txt").write_bytes(content)
    result = _fake_cli(monkeypatch, "quote", "--file", "nosuch.txt", *_dirs(built))
    _plain(result)
    assert f"error: {message}" in result.stderr


def test_compare_with_a_missing_run_is_in_plain_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("runA").mkdir()
    result = _fake_cli(monkeypatch, "eval", "--compare", "runA", "nosuch.jsonl")
    _plain(result)
    assert "error: cannot compare: “nosuch.jsonl” does not exist" in result.stderr


# --- 4. an unknown model ---------------------------------------------------------------------------


def test_unknown_model_is_not_looked_for_online_and_leaves_no_index_folder(tmp_path: Path) -> None:
    shutil.copytree(DATA / "mini", tmp_path / "corp")
    ixbad = tmp_path / "ixbad"
    result = CliRunner().invoke(main, ["index", "--rebuild", "--model", "nosuchmodel", "--corpus",
                                       str(tmp_path / "corp"), "--index", str(ixbad)], catch_exceptions=False)
    _plain(result)
    assert "error: no model “nosuchmodel” on this machine: give the packaged default" in result.stderr
    assert "(nothing is downloaded)" in result.stderr
    assert "huggingface" not in result.stderr.lower() and "internet" not in result.stderr
    assert not ixbad.exists()


# --- 5. fix hints carry the user's options ---------------------------------------------------------


def test_index_command_adds_only_the_options_given() -> None:
    assert _index_command(Settings()) == "assistant index"
    settings = Settings(index_dir=Path("my ix"), model="/models/m", backend="onnx")
    assert _index_command(settings) == "assistant index --index 'my ix' --model /models/m --backend onnx"
    assert (_index_command(settings, " --rebuild --model x")
            == "assistant index --rebuild --model x --index 'my ix' --backend onnx")


def test_damaged_index_hint_names_the_users_index(built: Settings, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _copy(built, tmp_path, "my index")
    damaged = settings.index_dir / current_version(settings.index_dir) / "chunks.faiss"
    damaged.write_bytes(damaged.read_bytes()[:100])
    result = _fake_cli(monkeypatch, "ask", "How fast does the glacier advance?", *_dirs(settings))
    _plain(result)
    assert (f"run `assistant index --rebuild --corpus {settings.corpus_dir} --index '{settings.index_dir}' "
            "--model fake-encoder` to build it again") in result.stderr


def test_stale_warning_names_the_users_index(built: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _copy(built, tmp_path, "my index")
    (settings.corpus_dir / "new.txt").write_text("The ferry leaves the harbour at nine every morning.\n")
    result = _fake_cli(monkeypatch, "ask", "When does the ferry leave?", *_dirs(settings))
    assert result.exit_code == 0, result.output
    assert (f"run `assistant index --corpus {settings.corpus_dir} --index '{settings.index_dir}' "
            "--model fake-encoder` to update it") in result.stderr


# --- 6. index --check and the backend ---------------------------------------------------------------


def test_check_refuses_an_index_of_another_backend(built: Settings, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    settings = built.with_(index_dir=tmp_path / "index", backend="onnx")
    build_index(settings, FakeEncoder())  # recorded as fake-encoder+onnx
    result = _fake_cli(monkeypatch, "index", "--check", *_dirs(settings))
    _plain(result)
    assert "index is up to date" not in result.stdout
    assert "built with the onnx backend, not the torch one asked for" in result.stderr
    assert "Ask with --model 'fake-encoder' --backend onnx" in result.stderr
    result = _fake_cli(monkeypatch, "ask", "How fast does the glacier advance?", *_dirs(settings))
    assert result.exit_code == 2 and "built with the onnx backend, not the torch one asked for" in result.stderr
    result = _fake_cli(monkeypatch, "index", "--check", "--backend", "onnx", *_dirs(settings))
    assert result.exit_code == 0 and "index is up to date" in result.stdout


# --- 7. a closed stdout ------------------------------------------------------------------------------


def test_closed_stdout_ends_quietly(built: Settings) -> None:
    """As `assistant ask ... | head -1` when head has gone: exit 0, nothing on stderr."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to stdout fails with a broken pipe
    try:
        done = subprocess.run([sys.executable, str(REPO / "tests" / "fake_indexer.py"), "ask",
                               "How fast does the glacier advance?", *_dirs(built), "--model", "fake-encoder",
                               "--reader", "none"], cwd=REPO, stdout=write_end, stderr=subprocess.PIPE, text=True,
                              timeout=120, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""


# --- 8. an empty quote -------------------------------------------------------------------------------


def test_empty_quote_is_called_empty(built: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("empty.txt").write_text("")
    for args, message in (([""], "the quote is empty"), (["  \n "], "the quote is empty"),
                          (["--file", "empty.txt"], "“empty.txt” is empty")):
        result = _fake_cli(monkeypatch, "quote", *args, *_dirs(built))
        _plain(result)
        assert f"error: {message}" in result.stderr and "word(s)" not in result.stderr


# --- 9. --doc given as a file name -----------------------------------------------------------------------


def test_doc_given_as_a_file_name_is_taken_for_its_id(built: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    result = _fake_cli(monkeypatch, "ask", "How fast does the glacier advance?", "--doc", "notes.md", "--json",
                       *_dirs(built))
    assert result.exit_code == 0, result.output
    assert "warning: using document id notes" in result.stderr
    assert {p["doc_id"] for p in json.loads(result.stdout)["passages"]} == {"notes"}
    result = _fake_cli(monkeypatch, "ask", "How fast does the glacier advance?", "--doc", "nosuch.txt", *_dirs(built))
    _plain(result)
    assert ("error: no document with id “nosuch.txt” in the index; ids are like: notes, page, repeat"
            in result.stderr)
