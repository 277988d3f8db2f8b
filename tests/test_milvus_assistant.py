"""The assistant on a Milvus store: what it answers on the index folder.

The session's seed index is copied into Milvus as `assistant index --store` does (stores.publish),
then the same questions, filtered questions and quotes go to an Assistant on each store. Both
count the same BM25 terms (milvus_search.terms_of) and the dense search is exact on both, so
passages, answers, phrases, confidences and quote verdicts must agree, and every span shown from
Milvus must be its document's text at its offsets.

Milvus is reached two ways: milvus-lite on a local file (``milvus-lite:FILE.db``, embedded in the
process), and a Milvus server through its gRPC port (``milvus://HOST:PORT``, as a cluster is
reached), started by the test in a process of its own. The server is milvus-lite's own
(``milvus-lite server``): the registry's Milvus server package (2.3.5) has no BM25 (README.md,
"Milvus store"). Unlike a file, a server is shared by processes: a build in one process and an
app in another use it at once.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
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
from assistant.stores import milvus_uri, publish  # noqa: E402


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@contextmanager
def milvus_server(data_dir: Path) -> Iterator[str]:
    """A Milvus gRPC server on a free local port, in a process of its own: its ``milvus://`` store."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = data_dir.with_name(data_dir.name + ".log")
    with log.open("w") as out:
        server = subprocess.Popen([sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir),
                                   "--host", "127.0.0.1", "--port", str(port)], stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "listening" not in log.read_text() and server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "listening" in log.read_text(), log.read_text()
        yield f"milvus://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=30)


@pytest.fixture(scope="module", params=["milvus-lite file", "Milvus server"])
def stores(request: pytest.FixtureRequest, seed_index: Settings, real_encoder,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Assistant, Assistant]]:
    """An Assistant on the seed index folder, and one on its copy in Milvus (a file or a server)."""
    where = tmp_path_factory.mktemp("milvus")
    with milvus_server(where / "server") if request.param == "Milvus server" else \
            nullcontext(f"milvus-lite:{where / 'seed.db'}") as store:
        on_milvus = seed_index.with_(store=store)
        assert publish(on_milvus)
        milvus = Assistant.open(on_milvus, real_encoder)
        assert milvus.index.searcher.uri == milvus_uri(store)  # the file, or the server's port
        yield Assistant.open(seed_index, real_encoder), milvus


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


def test_an_app_follows_a_version_another_process_builds_on_a_milvus_server(mini_corpus: Path, real_encoder,
                                                                            tmp_path: Path) -> None:
    """A cluster's shape: `assistant index --store milvus://HOST:PORT` runs in a process of its own
    while an app (LiveAssistant, as `assistant serve` holds it) stays connected to the same server;
    the app's next request answers from the new version (a milvus-lite file refuses the second process)."""
    corpus = mini_corpus  # a copy of the test's own
    with milvus_server(tmp_path / "milvus") as store:
        settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", store=store)

        def index() -> str:
            built = subprocess.run([sys.executable, "-m", "assistant", "index", "--json", "--corpus", str(corpus),
                                    "--index", str(settings.index_dir), "--store", store],
                                   capture_output=True, text=True, cwd=REPO, check=False)
            assert built.returncode == 0, built.stderr
            return json.loads(built.stdout)["store"]["version"]

        first = index()
        live = LiveAssistant(Assistant.open(settings, real_encoder))
        opened = live.current()
        assert opened.index.version == first and opened.index.searcher.uri == milvus_uri(store)
        assert "zoo" not in opened.index.by_id
        (corpus / "zoo.md").write_text("# Zoo\n\nThe quokka smiled at the keeper all morning.\n", encoding="utf-8")
        second = index()
        newer = live.current()
        assert second != first and newer.index.version == second
        answer = newer.ask("What did the quokka do all morning?").answer
        assert answer is not None and answer.citation.doc_id == "zoo" and "quokka smiled" in answer.citation.text
        span = answer.citation.span
        assert newer.index.by_id["zoo"].text[span.start : span.end] == answer.citation.text
