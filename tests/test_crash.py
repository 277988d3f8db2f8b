"""Crashes during indexing: SIGKILL `assistant index` anywhere, and nothing is lost.

The indexer runs in a subprocess through tests/fake_indexer.py: the real command line with the
FakeEncoder, which can stop at a named point of the build and wait to be killed (see that
file). After each kill the index must load and answer exactly as one complete version does:
the previous one when the kill came before CURRENT was switched, the new one after; and the
next `assistant index` must complete normally. Damaged index files are named by the CLI with
the command that repairs them.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import assistant.embedding
from assistant.cli import main
from assistant.config import Settings
from assistant.errors import IndexMissingError
from assistant.pipeline import Assistant
from assistant.store import build_index, current_version, load_index
from conftest import REPO, FakeEncoder

INDEXER = REPO / "tests" / "fake_indexer.py"
NOT_REACHED = 3  # fake_indexer's exit status for a pause point the build never reached
TOPICS = {
    "otters": "Sea otters hold hands while they sleep so that they do not drift apart.",
    "lighthouse": "The lighthouse keeper counted forty-two ships in the harbour that night.",
    "glacier": "The Perito Moreno glacier advances about two metres per day.",
    "copper": "The copper mine produced 1.2 million tonnes of ore last year.",
    "budget": "The budget of the museum grew by seven percent in 2023.",
    "bees": "Honey bees dance to tell their sisters where the flowers are.",
}
QUESTIONS = ["Why do sea otters hold hands?", "How many ships did the lighthouse keeper count?",
             "How fast does the glacier advance?", "How much did the budget grow?",
             "Where do the new volcano islands form?"]
QUOTE = "The copper mine produced 1.2 million tonnes of ore last year."
FILLER = ("river", "mill", "town", "baker", "bread", "market", "morning", "road", "bridge", "lantern")


def _document(topic: str, fact: str, seed: int) -> str:
    rng = random.Random(seed)
    lines = [f"# {topic.title()}", ""]
    for paragraph in range(6):
        sentences = [" ".join(rng.choices(FILLER, k=12)).capitalize() + "." for _ in range(5)]
        if paragraph == 3:
            sentences.insert(2, fact)
        lines += [" ".join(sentences), ""]
    return "\n".join(lines)


def _write_corpus(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    for seed, (topic, fact) in enumerate(TOPICS.items()):
        (corpus / f"{topic}.md").write_text(_document(topic, fact, seed), encoding="utf-8")


def _change_corpus(corpus: Path) -> None:
    """An update of every kind: one document added, one changed, one deleted."""
    (corpus / "volcano.md").write_text(_document("volcano", "New volcano islands form where magma rises "
                                                 "through the ocean floor.", 99), encoding="utf-8")
    (corpus / "budget.md").write_text(_document("budget", "The budget of the museum shrank by two percent "
                                                "in 2024.", 4), encoding="utf-8")
    (corpus / "bees.md").unlink()


def answers(settings: Settings) -> list[dict]:
    """Everything the live index says: each question's response and one quote check."""
    assistant = Assistant.open(settings, FakeEncoder())
    return [assistant.ask(q).to_dict() for q in QUESTIONS] + [assistant.check_quote(QUOTE).to_dict()]


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Reference indexes built without interruption: the corpus before and after the change."""
    root = tmp_path_factory.mktemp("crash")
    before = Settings(corpus_dir=root / "corpus", index_dir=root / "index", model="fake-encoder")
    _write_corpus(before.corpus_dir)
    build_index(before, FakeEncoder())
    after = Settings(corpus_dir=root / "corpus-after", index_dir=root / "index-after", model="fake-encoder")
    shutil.copytree(before.corpus_dir, after.corpus_dir)
    _change_corpus(after.corpus_dir)
    build_index(after, FakeEncoder())
    return {"root": root, "before": before, "after": after,
            "answers_before": answers(before), "answers_after": answers(after)}


def _run_indexer(settings: Settings, *args: str, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, str(INDEXER), "index", "--corpus", str(settings.corpus_dir),
               "--index", str(settings.index_dir), "--model", "fake-encoder", *args]
    return subprocess.Popen(command, cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, process: subprocess.Popen, what: str) -> None:
    """Poll until ``path`` exists; fail if the process ends first or takes over two minutes."""
    deadline = time.monotonic() + 120
    while not path.exists():
        if process.poll() is not None:
            out, err = process.communicate()
            reason = "the pause point was never reached (update tests/fake_indexer.py)" \
                if process.returncode == NOT_REACHED else f"it exited with {process.returncode}"
            pytest.fail(f"the indexer did not reach {what}: {reason}\n{out}\n{err}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"the indexer did not reach {what} within two minutes")
        time.sleep(0.02)


def _kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert process.returncode == -signal.SIGKILL


def _fake_cli(monkeypatch: pytest.MonkeyPatch, *args: str) -> object:
    monkeypatch.setattr(assistant.embedding, "SentenceTransformerEncoder", lambda *a, **k: FakeEncoder())
    return CliRunner().invoke(main, [*args, "--model", "fake-encoder"], catch_exceptions=False)


def _fresh_copy(states: dict[str, object], tmp_path: Path, *, with_index: bool) -> Settings:
    """A changed corpus beside a copy of the index of the corpus before the change."""
    before: Settings = states["before"]  # type: ignore[assignment]
    settings = before.with_(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "index")
    shutil.copytree(before.corpus_dir, settings.corpus_dir)
    _change_corpus(settings.corpus_dir)
    if with_index:
        shutil.copytree(before.index_dir, settings.index_dir)
    return settings


def _check_after_kill(states: dict[str, object], settings: Settings, *, switched: bool | None,
                      old_version: str | None, monkeypatch: pytest.MonkeyPatch, rebuild: bool) -> None:
    """The index answers as one complete version; the next `assistant index` completes normally.

    ``switched``: whether the kill came after CURRENT was switched (None: it may have either way).
    """
    version = current_version(settings.index_dir)
    if old_version is None and version is None:
        with pytest.raises(IndexMissingError, match="run `assistant index`"):
            load_index(settings.index_dir)
        state = None
    else:
        state = answers(settings)
        assert state in (states["answers_before"], states["answers_after"]), "answers from no complete version"
    if switched is False:
        assert version == old_version
        assert state == (states["answers_before"] if old_version else None)
    if switched:
        assert version != old_version and state == states["answers_after"]

    result = _fake_cli(monkeypatch, "index", "--json", *(["--rebuild"] if rebuild else []),
                       "--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    if state == states["answers_after"] and not rebuild:
        assert report["chunks_embedded"] == 0  # the killed build had finished its work
    elif not rebuild:
        expected = {"added": ["volcano"], "changed": ["budget"], "deleted": ["bees"]} if old_version else \
            {"added": sorted(t for t in [*TOPICS, "volcano"] if t != "bees"), "changed": [], "deleted": []}
        assert {k: report[k] for k in expected} == expected
    assert answers(settings) == states["answers_after"]
    leftovers = sorted(p.name for p in settings.index_dir.iterdir() if p.name not in (".lock", "CURRENT"))
    assert not [name for name in leftovers if name.startswith(".")], leftovers  # no unfinished build
    assert len(leftovers) <= 2, leftovers  # the live version and the one before it


BEFORE_SWITCH = ["encode", "write:documents.jsonl", "write:chunks.faiss", "write:sentence_vectors.npy",
                 "write:bm25.data.npy", "rename", "pointer"]


@pytest.mark.parametrize("point", [*BEFORE_SWITCH, "switched"])
def test_kill_during_incremental_update(states: dict[str, object], tmp_path: Path, point: str,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _fresh_copy(states, tmp_path, with_index=True)
    old = current_version(settings.index_dir)
    paused = tmp_path / "paused"
    process = _run_indexer(settings, env={"ASSISTANT_TEST_PAUSE": point, "ASSISTANT_TEST_PAUSED": str(paused)})
    _wait_for(paused, process, point)
    _kill(process)
    _check_after_kill(states, settings, switched=point == "switched", old_version=old,
                      monkeypatch=monkeypatch, rebuild=False)


@pytest.mark.parametrize("point", ["encode", "write:chunks.npy", "pointer", "switched"])
def test_kill_during_full_rebuild(states: dict[str, object], tmp_path: Path, point: str,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _fresh_copy(states, tmp_path, with_index=True)
    old = current_version(settings.index_dir)
    paused = tmp_path / "paused"
    process = _run_indexer(settings, "--rebuild",
                           env={"ASSISTANT_TEST_PAUSE": point, "ASSISTANT_TEST_PAUSED": str(paused)})
    _wait_for(paused, process, point)
    _kill(process)
    _check_after_kill(states, settings, switched=point == "switched", old_version=old,
                      monkeypatch=monkeypatch, rebuild=True)


@pytest.mark.parametrize("point", ["encode", "rename"])
def test_kill_during_first_build(states: dict[str, object], tmp_path: Path, point: str,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _fresh_copy(states, tmp_path, with_index=False)
    paused = tmp_path / "paused"
    process = _run_indexer(settings, env={"ASSISTANT_TEST_PAUSE": point, "ASSISTANT_TEST_PAUSED": str(paused)})
    _wait_for(paused, process, point)
    _kill(process)
    _check_after_kill(states, settings, switched=False, old_version=None, monkeypatch=monkeypatch, rebuild=False)


@pytest.mark.parametrize("delay", [0.05, 0.25, 0.45, 0.65])
def test_kill_at_a_moment_of_an_update(states: dict[str, object], tmp_path: Path, delay: float,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed ``delay`` seconds after the command started its work, wherever it then is."""
    settings = _fresh_copy(states, tmp_path, with_index=True)
    old = current_version(settings.index_dir)
    started = tmp_path / "started"
    process = _run_indexer(settings, env={"ASSISTANT_TEST_STARTED": str(started)})
    _wait_for(started, process, "its start")
    time.sleep(delay)  # the kill's moment, not a wait for something to happen
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    _check_after_kill(states, settings, switched=None, old_version=old, monkeypatch=monkeypatch, rebuild=False)


# --- damaged index files ------------------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("name, damage, says", [
    ("chunks.faiss", _truncate, "is damaged or truncated"),
    ("documents.jsonl", _flip_a_byte, "is damaged or truncated"),
    ("sentence_vectors.npy", Path.unlink, "is missing"),
    ("bm25.data.npy", _flip_a_byte, "is damaged or truncated"),
    ("bm25.vocab.json", Path.unlink, "is missing"),
    ("manifest.json", _truncate, "is damaged"),
])
def test_damaged_index_file_is_named_with_the_fix(states: dict[str, object], tmp_path: Path, name: str,
                                                  damage, says: str, monkeypatch: pytest.MonkeyPatch) -> None:
    before: Settings = states["before"]  # type: ignore[assignment]
    settings = before.with_(index_dir=tmp_path / "index")
    shutil.copytree(before.index_dir, settings.index_dir)
    path = settings.index_dir / current_version(settings.index_dir) / name
    damage(path)
    dirs = ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]

    result = CliRunner().invoke(main, ["ask", "Why do sea otters hold hands?", *dirs, "--model", "fake-encoder"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith(f"error: index file {path} {says}")
    # the fix names the user's own corpus, index and model, so it can be run as written
    assert (f"run `assistant index --rebuild --corpus {settings.corpus_dir} --index {settings.index_dir} "
            "--model fake-encoder` to build it again from the corpus") in result.stderr

    result = _fake_cli(monkeypatch, "index", *dirs)  # an update cannot start from a damaged index
    assert result.exit_code == 2 and f"index file {path}" in result.stderr and "--rebuild" in result.stderr

    result = _fake_cli(monkeypatch, "index", "--rebuild", *dirs)
    assert result.exit_code == 0, result.output
    assert answers(settings) == states["answers_before"]


def test_pointer_to_a_missing_version_is_named(states: dict[str, object], tmp_path: Path) -> None:
    before: Settings = states["before"]  # type: ignore[assignment]
    settings = before.with_(index_dir=tmp_path / "index")
    shutil.copytree(before.index_dir, settings.index_dir)
    version = current_version(settings.index_dir)
    shutil.rmtree(settings.index_dir / version)
    result = CliRunner().invoke(main, ["ask", "otters", "--corpus", str(settings.corpus_dir),
                                       "--index", str(settings.index_dir), "--model", "fake-encoder"])
    assert result.exit_code == 2
    assert f"index file {settings.index_dir / version / 'manifest.json'} is missing" in result.stderr
    assert "assistant index --rebuild" in result.stderr
