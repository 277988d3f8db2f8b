"""The Check-a-quote tab's draft check and paraphrase verdict, through the app's API and in Chromium.

Reuses conftest's served app (seed corpus plus hostile documents) and test_browser's browser,
contexts (nothing may leave 127.0.0.1, no dialog may fire) and helpers.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client
from test_browser import TIMEOUT, browser, context, download, expect, open_tab, page, shoot, watch  # noqa: F401
from test_drafts import DRAFT, EXPECTED
from test_ui import assert_inert

from assistant.ui.render import source_link

PARAPHRASE = "Engineers are now writing the first safety rules for the shared data platforms."
VERDICT_BADGES = {"verbatim": "Verbatim", "altered": "Altered", "paraphrase": "Paraphrase", "absent": "Absent"}


@pytest.fixture
def client(server: str, tmp_path: Path) -> Iterator[Client]:
    client = Client(server, verbose=False, download_files=str(tmp_path))
    yield client
    client.close()


def test_app_checks_every_quotation_and_offers_csv_and_json(client: Client) -> None:
    html, rows, files = client.predict(DRAFT, api_name="/check_draft")
    assert [(r["quotation"], r["verdict"]) for r in rows] == [(e["quotation"], e["verdict"]) for e in EXPECTED]
    assert_inert(html)
    for row in rows:
        if row["doc_id"]:
            assert source_link(row["doc_id"], row["source_start"], row["source_end"]) in html.replace("&amp;", "&")
    assert "not a quote; closest in meaning: “Funding for these initiatives" in html
    names = {Path(f).name: Path(f) for f in files}
    assert set(names) == {"quotations.csv", "quotations.json"}
    assert json.loads(names["quotations.json"].read_text(encoding="utf-8")) == rows
    parsed = list(csv.DictReader(io.StringIO(names["quotations.csv"].read_text(encoding="utf-8"))))
    assert [p["verdict"] for p in parsed] == [e["verdict"] for e in EXPECTED]


def test_app_shows_a_paraphrase_as_not_a_quote(client: Client) -> None:
    html, data = client.predict(PARAPHRASE, api_name="/check_quote")
    assert data["verdict"] == "paraphrase" and len(data["matches"]) == 1
    assert 'class="qa-badge qa-paraphrase"' in html and "Not a quote; closest in meaning" in html
    assert "It is not a verified quote." in html and "Verbatim" not in html
    assert_inert(html)


@pytest.mark.browser
def test_draft_check_table_and_paraphrase_in_the_browser(page, tmp_path: Path) -> None:
    open_tab(page, "Check a quote")
    result = page.locator("#quote-result")
    expect(page.locator("#draft-files")).to_be_hidden()  # no empty download box before a draft's table
    page.get_by_label("Quote").fill(DRAFT)
    page.get_by_role("button", name="Check every quotation").click()
    table = result.locator("table")
    expect(table.locator("caption")).to_have_text(f"Quotations in the draft ({len(EXPECTED)})", timeout=TIMEOUT)
    rows = table.locator("tbody tr")
    expect(rows).to_have_count(len(EXPECTED))
    expect(table.locator("thead th")).to_have_text(["Quotation", "Verdict", "Source", "Speaker", "Link"])
    expect(rows.locator(".qa-badge")).to_have_text([VERDICT_BADGES[e["verdict"]] for e in EXPECTED])
    for row, expected in zip(rows.all(), EXPECTED):
        expect(row.locator("td").first).to_contain_text(expected["quotation"].split("\n")[0])
        expect(row.get_by_role("link", name="Open in source")).to_have_count(1 if expected["source"] else 0)
    paraphrase = rows.nth([e["verdict"] for e in EXPECTED].index("paraphrase"))
    expect(paraphrase).to_contain_text("not a quote; closest in meaning: “Funding for these initiatives")
    saved = download(page, "#draft-files", "quotations.csv", tmp_path / "quotations.csv")
    parsed = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [p["verdict"] for p in parsed] == [e["verdict"] for e in EXPECTED]
    expect(page.locator("#draft-files a[download='quotations.json']")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile(r"^Download quotations\.csv \("))).to_be_visible()
    expect(page.locator("#draft-files").get_by_role("button", name="Remove this file")).to_have_count(0)
    shoot(page, "quote-draft")

    page.get_by_label("Quote").fill(PARAPHRASE)
    page.get_by_role("button", name="Check quote").click()
    expect(result.locator(".qa-verdict-line .qa-badge")).to_have_text("Paraphrase", timeout=TIMEOUT)
    expect(result.locator(".qa-verdict-line")).to_contain_text("It is not a verified quote.")
    expect(result.locator("p.qa-closest")).to_have_text("Not a quote; closest in meaning:")
    expect(result.locator(".qa-match blockquote mark")).to_contain_text("Technical teams are currently drafting")
    expect(result.locator(".qa-match .qa-cite")).to_contain_text("meaning similarity 0.")
    expect(page.locator("#draft-files a")).to_have_count(0)  # the draft's downloads went with its table
    expect(page.locator("#draft-files")).to_be_hidden()
    shoot(page, "quote-paraphrase")
