"""The assistant on a Milvus store (milvus-lite, a local file): what it answers on the index folder.

The session's seed index is copied into milvus-lite as `assistant index --store` does
(stores.publish), then the same questions, filtered questions and quotes go to an Assistant on
each store. Both count the same BM25 terms (milvus_search.terms_of) and the dense search is
exact on both, so passages, answers, phrases, confidences and quote verdicts must agree, and
every span shown from Milvus must be its document's text at its offsets.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO, SEED_QUESTIONS, SEED_QUOTES, FakeEncoder

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")
pytestmark = pytest.mark.folder_store("compares the index folder with its Milvus copy, whose store it names")

from assistant.cli import main  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.pipeline import Assistant, LiveAssistant  # noqa: E402
from assistant.store import build_index  # noqa: E402
from assistant.stores import publish  # noqa: E402


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def stores(seed_index: Settings, real_encoder, tmp_path_factory: pytest.TempPathFactory) -> tuple[Assistant, Assistant]:
    on_milvus = seed_index.with_(store=f"milvus-lite:{tmp_path_factory.mktemp('milvus') / 'seed.db'}")
    assert publish(on_milvus)
    return Assistant.open(seed_index, real_encoder), Assistant.open(on_milvus, real_encoder)


def _shown(response) -> tuple:  # noqa: ANN001 - a Response
    answer = response.answer
    return ([(p.rank, p.citation.doc_id, p.citation.span) for p in response.passages],
            answer and (answer.citation.doc_id, answer.citation.span, answer.phrase and (answer.phrase.start, answer.phrase.end),
                        round(answer.confidence, 5)))


def test_answers_are_the_same_on_both_stores(stores: tuple[Assistant, Assistant]) -> None:
    local, milvus = stores
    assert milvus.index.searcher.__class__.__name__ == "MilvusSearch"
    questions = _lines(SEED_QUESTIONS)
    answered = 0
    for q in questions:
        here, there = local.ask(q["question"]), milvus.ask(q["question"])
        assert _shown(there) == _shown(here), q["id"]
        for span in [*there.passages, *([there.answer] if there.answer else [])]:
            text = milvus.index.by_id[span.citation.doc_id].text
            assert text[span.citation.span.start : span.citation.span.end] == span.citation.text
        answered += there.answer is not None
    assert len(questions) == 55 and answered >= 40  # the comparison covered answers, not only abstentions
    one = [local.index.documents[1].doc_id]
    for q in questions[:12]:
        assert _shown(milvus.ask(q["question"], doc_ids=one)) == _shown(local.ask(q["question"], doc_ids=one)), q["id"]


def test_quote_checks_are_the_same_on_both_stores(stores: tuple[Assistant, Assistant]) -> None:
    local, milvus = stores
    for q in _lines(SEED_QUOTES):
        here, there = local.check_quote(q["quote"]), milvus.check_quote(q["quote"])
        assert (there.verdict, round(there.score, 5)) == (here.verdict, round(here.score, 5)), q["id"]
        assert [(m.citation.doc_id, m.citation.span) for m in there.matches] == [
            (m.citation.doc_id, m.citation.span) for m in here.matches], q["id"]


def test_cli_copies_each_new_version_and_asks_milvus(seed_index: Settings, tmp_path: Path) -> None:
    """`assistant index --store` in a process of its own (a milvus-lite file is open to one process at
    a time), then `assistant ask --store` here, on the version the other process wrote."""
    store = f"milvus-lite:{tmp_path / 'cli.db'}"
    dirs = ["--corpus", str(seed_index.corpus_dir), "--index", str(seed_index.index_dir), "--store", store]
    built = subprocess.run([sys.executable, "-m", "assistant", "index", "--json", *dirs], capture_output=True,
                           text=True, cwd=REPO, check=False)
    assert built.returncode == 0, built.stderr
    report = json.loads(built.stdout)
    assert report["chunks_embedded"] == 0 and report["store"]["address"] == store and report["store"]["version"]
    asked = CliRunner().invoke(main, ["ask", "Who is South Korea's foreign affairs minister?", "--json", *dirs],
                               catch_exceptions=False)
    assert asked.exit_code == 0, asked.stderr
    answer = json.loads(asked.stdout)["answer"]
    text = (seed_index.corpus_dir / f"{answer['doc_id']}.txt").read_text(encoding="utf-8")
    assert "Cho Hyun" in answer["text"] and text[answer["start"] : answer["end"]] == answer["text"]


def test_a_live_app_picks_up_a_new_milvus_version(fake_settings: Settings, tmp_path: Path) -> None:
    settings = fake_settings.with_(store=f"milvus-lite:{tmp_path / 'live.db'}")
    build_index(settings, FakeEncoder())
    publish(settings)
    live = LiveAssistant(Assistant.open(settings, FakeEncoder()))
    first = live.current().index.version
    assert not live.current().ask("zeppelin quokka").passages or "quokka" not in live.current().ask(
        "zeppelin quokka").passages[0].citation.text
    (settings.corpus_dir / "zoo.md").write_text("# Zoo\n\nThe quokka smiled at the keeper all morning.\n")
    build_index(settings, FakeEncoder())
    publish(settings)
    newer = live.current()
    assert newer.index.version != first and "zoo" in newer.index.by_id
    assert "quokka" in newer.ask("quokka").passages[0].citation.text
