"""Measured floors with the real model on the whole seed development set (55 questions)."""

from __future__ import annotations

from assistant.config import DEFAULT_READER, Settings
from conftest import SEED_QUESTIONS


def test_seed_questions_hit_at_5(seed_index: Settings, eval_run) -> None:
    run = eval_run(seed_index, SEED_QUESTIONS, DEFAULT_READER)
    assert run.summary["hit@5"] >= 0.90, run.summary
    for row in run.rows:
        for p in row["passages"]:
            text = seed_index.corpus_dir.joinpath(f"{p['doc_id']}.txt").read_text(encoding="utf-8")
            assert text[p["start"] : p["end"]] == p["text"]
