"""LiveAssistant: a rebuilt index is picked up without a restart; a broken one is not."""

from __future__ import annotations

from assistant.config import Settings
from assistant.pipeline import Assistant, LiveAssistant
from assistant.store import build_index, current_version
from conftest import FakeEncoder, folder_version


def test_live_assistant_follows_rebuilds(fake_settings: Settings) -> None:
    encoder = FakeEncoder()
    build_index(fake_settings, encoder)
    live = LiveAssistant(Assistant.open(fake_settings, encoder))
    first = live.current()
    assert live.current() is first  # nothing changed: the same object, nothing reloaded
    assert "otters" not in {d.doc_id for d in first.index.documents}

    (fake_settings.corpus_dir / "otters.txt").write_text("Sea otters hold hands while they sleep.")
    build_index(fake_settings, encoder)
    second = live.current()
    assert second is not first and folder_version(second.index) == current_version(fake_settings.index_dir)
    assert second.ask("otters hold hands sleep").passages[0].citation.doc_id == "otters"
    assert first.ask("otters hold hands sleep").passages[0].citation.doc_id != "otters"  # old one is untouched

    (fake_settings.corpus_dir / "otters.txt").write_text("Otters changed again.")
    build_index(fake_settings, encoder)
    version = current_version(fake_settings.index_dir)
    (fake_settings.index_dir / version / "chunks.faiss").write_bytes(b"broken")
    assert live.current() is second  # the damaged version is not served
    assert live.last_error is not None and "chunks.faiss" in str(live.last_error)
