"""The Evaluate tab's comparison of two runs of the session, in Chromium (issue 13's evaluator
workflow). Reuses test_browser's Chromium, contexts (nothing may leave 127.0.0.1, no dialog may
fire) and helpers, and conftest's served app over the seed corpus."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import edited_gold, write_question_set
from test_browser import TIMEOUT, browser, context, expect, open_tab, page, shoot, watch  # noqa: F401

from assistant.metrics import EXPLANATIONS

IDS = ("d02", "d06", "n03")


def _run(page, path: Path) -> None:
    """Upload ``path`` in place of any earlier file and run it."""
    upload = page.locator("#eval-file")
    clear = upload.get_by_role("button", name="Clear")
    if clear.count():
        clear.click()
    upload.locator("input[type=file]").set_input_files(str(path))
    expect(upload).to_contain_text(path.name, timeout=TIMEOUT)
    page.get_by_role("button", name="Run evaluation").click()


@pytest.mark.browser
def test_two_runs_are_compared_with_deltas_and_flipped_questions(page, tmp_path: Path) -> None:
    open_tab(page, "Evaluate")
    _run(page, write_question_set(tmp_path / "base.jsonl", IDS))
    summary = page.locator("#eval-summary")
    card = summary.locator(".qa-metrics div", has=page.locator("dt", has_text=re.compile(r"^hit@1$")))
    expect(card.locator("dd")).to_contain_text("2 q.", timeout=TIMEOUT)  # the two answerable questions
    expect(card).to_have_attribute("title", EXPLANATIONS["hit@1"])
    summary.get_by_text("What the metrics mean").click()
    hit = summary.locator("tr", has=page.locator("td", has_text=re.compile(r"^hit@1$")))
    expect(hit.locator("td")).to_have_text(["hit@1", re.compile(r"^[01]"), "2 q.", EXPLANATIONS["hit@1"]])
    expect(page.locator("#run-b input")).to_have_value(re.compile(r"^Run 1: base\.jsonl · reader "))

    _run(page, edited_gold(tmp_path / "edited.jsonl", IDS, "d02"))
    expect(page.locator("#run-b input")).to_have_value(re.compile(r"^Run 2: edited\.jsonl · "), timeout=TIMEOUT)
    expect(page.locator("#run-a input")).to_have_value(re.compile(r"^Run 1: base\.jsonl · "))
    page.get_by_role("button", name="Compare runs").click()
    result = page.locator("#eval-compare")
    deltas = result.locator("table", has_text="Per metric")
    row = deltas.locator("tr", has=page.locator("td", has_text=re.compile(r"^hit@10$")))
    expect(row.locator("td")).to_have_text(["hit@10", "2", "1.0000", "0.5000", "-0.5000", "0", "1", "sign test",
                                            re.compile(r"\d"), "no"], timeout=TIMEOUT)
    flipped = result.locator("table", has_text="Questions that flipped")
    expect(flipped.locator("tr", has_text="hit@10")).to_contain_text("1 → 0")
    expect(flipped.locator("tr", has_text="hit@10")).to_contain_text("d02")
    expect(result).to_contain_text("1 with different gold labels: d02")
    shoot(page, "evaluate-compare")
