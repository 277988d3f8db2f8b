"""Serve the assistant in the browser: `python app.py` (the same as `assistant serve`).

Settings come from the environment: ASSISTANT_CORPUS, ASSISTANT_INDEX, ASSISTANT_MODEL,
ASSISTANT_BACKEND (torch, the default, or onnx), ASSISTANT_READER (default the shipped reader; "none" for the hand-tuned scorer),
ASSISTANT_STORE (empty for the index folder, milvus-lite:FILE.db or milvus://HOST:PORT), ASSISTANT_HOST
(default 127.0.0.1), ASSISTANT_PORT (default 7860), and ASSISTANT_PASSWORD with ASSISTANT_USER
(default "assistant") to ask for a login. `demo` is the Gradio app, `live` the assistant behind
it and `app` the ASGI app with the source view (`uvicorn app:app` works too).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from assistant.runtime import QUERY_THREADS, configure_process

# Before torch, FAISS and gradio are loaded: nothing downloaded, no telemetry, one OpenMP thread per question.
configure_process(threads=QUERY_THREADS)

from assistant.config import DEFAULT_MODEL, DEFAULT_READER, Settings  # noqa: E402
from assistant.errors import AssistantError  # noqa: E402
from assistant.ui import exposure_warning, open_app, serve  # noqa: E402

HOST = os.environ.get("ASSISTANT_HOST", "127.0.0.1")
PORT = int(os.environ.get("ASSISTANT_PORT", "7860"))
PASSWORD = os.environ.get("ASSISTANT_PASSWORD")
AUTH = (os.environ.get("ASSISTANT_USER", "assistant"), PASSWORD) if PASSWORD else None

settings = Settings(
    corpus_dir=Path(os.environ.get("ASSISTANT_CORPUS", "corpus")),
    index_dir=Path(os.environ.get("ASSISTANT_INDEX", "index")),
    model=os.environ.get("ASSISTANT_MODEL", DEFAULT_MODEL),
    backend=os.environ.get("ASSISTANT_BACKEND", "torch"),
    reader=os.environ.get("ASSISTANT_READER", DEFAULT_READER),
    store=os.environ.get("ASSISTANT_STORE", ""),
)

if __name__ == "__main__":
    warning = exposure_warning(HOST, AUTH)
    if warning:
        print(warning, file=sys.stderr)

try:
    served = open_app(settings, host=HOST, port=PORT, auth=AUTH)  # model, index and reader load once
except AssistantError as exc:
    if __name__ == "__main__":
        sys.exit(f"error: {exc}")
    raise

app, demo, live = served.app, served.demo, served.live

if __name__ == "__main__":
    print(f"Serving on http://{HOST}:{PORT}  (Ctrl+C to stop)", file=sys.stderr)
    serve(app, HOST, PORT)
