"""Fixtures shared by the app's tests (test_ui.py, test_browser.py): one served app per module.

The app serves the seed corpus plus the hostile documents of tests/data/hostile (under
``hostile/``), indexed with the real model: the session's seed index is copied and updated,
so only the hostile documents are embedded. Import the fixtures into a test module to use them.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry from the app under test

import pytest  # noqa: E402

from assistant.config import Settings  # noqa: E402
from assistant.pipeline import Assistant  # noqa: E402
from assistant.store import build_index  # noqa: E402
from assistant.ui import build_demo, create_app, running  # noqa: E402

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).parent.parent
DEV = REPO / "eval" / "seed" / "questions.jsonl"
HOSTILE = "hostile/almanac"


def dev_questions() -> dict[str, dict]:
    """The development question set by id."""
    return {q["id"]: q for q in map(json.loads, DEV.read_text(encoding="utf-8").splitlines())}


def write_question_set(path: Path, ids: tuple[str, ...]) -> Path:
    """A small JSONL question set of development questions."""
    questions = dev_questions()
    path.write_text("".join(json.dumps(questions[q]) + "\n" for q in ids), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def ui_settings(tmp_path_factory: pytest.TempPathFactory, seed_index: Settings, real_encoder) -> Settings:
    root = tmp_path_factory.mktemp("app")
    shutil.copytree(seed_index.corpus_dir, root / "corpus")
    shutil.copytree(DATA / "hostile", root / "corpus" / "hostile")
    shutil.copytree(seed_index.index_dir, root / "index")
    settings = seed_index.with_(corpus_dir=root / "corpus", index_dir=root / "index")
    report = build_index(settings, real_encoder)
    assert sorted(report.added) == [HOSTILE, "hostile/signals"]
    return settings


@pytest.fixture(scope="module")
def assistant(ui_settings: Settings, real_encoder) -> Assistant:
    return Assistant.open(ui_settings, encoder=real_encoder)


@pytest.fixture(scope="module")
def server(assistant: Assistant, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The base URL of the app, served on a free 127.0.0.1 port until the module ends."""
    demo = build_demo(assistant, results_dir=tmp_path_factory.mktemp("results"))
    with running(create_app(demo, assistant)) as srv:
        yield srv.url
