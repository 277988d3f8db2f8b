"""The command line, run in this process with click's CliRunner: the model is loaded once per
process (``embedding.load_model``), so every command shares the session's; the seed index is the
session's. A subprocess test checks the real entry point (``python -m assistant``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from assistant.cli import main
from assistant.config import Settings
from conftest import REPO, SEED_QUESTIONS


def _run(*args: str) -> object:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _dirs(settings: Settings) -> list[str]:
    return ["--corpus", str(settings.corpus_dir), "--index", str(settings.index_dir)]


def test_ask_json_shape(seed_index: Settings) -> None:
    result = _run("ask", "Who is South Korea's foreign affairs minister?", "--k", "3", "--json", *_dirs(seed_index))
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["question"] == "Who is South Korea's foreign affairs minister?"
    assert [p["rank"] for p in data["passages"]] == [1, 2, 3]
    top = data["passages"][0]
    assert {"rank", "doc_id", "title", "source", "start", "end", "text", "score"} <= set(top)
    assert "Cho Hyun" in top["text"]
    text = (REPO / "corpus" / f"{top['doc_id']}.txt").read_text(encoding="utf-8")
    assert text[top["start"] : top["end"]] == top["text"]


def test_ask_lists_passages_without_a_raw_score(seed_index: Settings) -> None:
    """Like the app's passage cards: the fused score only ranks passages, so it is in --json only."""
    result = _run("ask", "Who is South Korea's foreign affairs minister?", "--k", "3", *_dirs(seed_index))
    assert result.exit_code == 0, result.stderr
    heads = [line for line in result.stdout.splitlines() if line[:1] == "[" and line[1:2].isdigit()]
    assert [line[:3] for line in heads] == ["[1]", "[2]", "[3]"]
    assert not any("score" in line for line in heads), heads


def test_ask_errors_exit_2(seed_index: Settings, tmp_path: Path) -> None:
    result = _run("ask", "   ", *_dirs(seed_index))
    assert result.exit_code == 2 and "question is empty" in result.stderr
    result = _run("ask", "anything", "--corpus", str(REPO / "corpus"), "--index", str(tmp_path / "none"))
    assert result.exit_code == 2 and "assistant index" in result.stderr
    result = _run("ask", "anything", "--k", "0", *_dirs(seed_index))
    assert result.exit_code == 2


def test_index_check_and_update(tmp_path: Path, seed_index: Settings) -> None:
    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus", corpus)
    dirs = ["--corpus", str(corpus), "--index", str(tmp_path / "index")]
    result = _run("index", "--check", *dirs)
    assert result.exit_code == 1 and "new" in result.stdout
    shutil.copytree(seed_index.index_dir, tmp_path / "index")  # the session's index of this corpus
    result = _run("index", "--json", *dirs)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["chunks"] > 0 and report["chunks_embedded"] == 0 and report["added"] == []
    assert _run("index", "--check", *dirs).exit_code == 0
    (corpus / "004_839b94e0d721e6c8.txt").unlink()
    result = _run("index", "--check", "--json", *dirs)
    assert result.exit_code == 1
    assert json.loads(result.stdout)["deleted"] == ["004_839b94e0d721e6c8"]
    result = _run("ask", "defense alliance", "--json", *dirs)
    assert "stale" in result.stderr
    result = _run("index", "--json", *dirs)
    assert json.loads(result.stdout)["deleted"] == ["004_839b94e0d721e6c8"]
    result = _run("index", "--model", "no-such-model", *dirs)
    assert result.exit_code == 2 and "built with model" in result.stderr


def test_eval_json_and_out(seed_index: Settings, tmp_path: Path) -> None:
    sample = SEED_QUESTIONS.read_text(encoding="utf-8").splitlines()[::5]  # the whole set: test_answer.py
    questions = tmp_path / "sample.jsonl"
    questions.write_text("\n".join(sample) + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    result = _run("eval", str(questions), "--out", str(out), "--json",
                  *_dirs(seed_index))
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert {"questions", "hit@1", "hit@3", "hit@5", "hit@10", "mrr@10"} <= set(summary)
    assert summary["questions"] == len(sample) and summary["answerable"] and summary["unanswerable"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == summary["questions"]
    assert {"id", "question", "passages"} <= set(lines[0])


def test_eval_malformed_set(seed_index: Settings, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "ok?", "answers": [], "sources": []}\nnot json\n'
                   '{"id": "a", "question": "dup", "answers": [], "sources": []}\n')
    result = _run("eval", str(bad), *_dirs(seed_index))
    assert result.exit_code == 2
    assert "line 2" in result.stderr and "line 3: duplicate id" in result.stderr


def test_python_dash_m_and_help() -> None:
    done = subprocess.run([sys.executable, "-m", "assistant", "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    for command in ("index", "ask", "eval"):
        assert command in done.stdout
