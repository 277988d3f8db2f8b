"""Serve the assistant in the browser: `python app.py` (or `make run`)."""

from __future__ import annotations

import os
from pathlib import Path

from assistant.config import Settings
from assistant.pipeline import Assistant
from assistant.ui import build_demo

settings = Settings(
    corpus_dir=Path(os.environ.get("ASSISTANT_CORPUS", "corpus")),
    index_dir=Path(os.environ.get("ASSISTANT_INDEX", "index")),
)

if __name__ == "__main__":
    demo = build_demo(Assistant.open(settings))
    demo.queue(default_concurrency_limit=4).launch(
        server_name=os.environ.get("ASSISTANT_HOST", "127.0.0.1"),
        server_port=int(os.environ.get("ASSISTANT_PORT", "7860")),
    )
