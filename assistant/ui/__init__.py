"""The browser app: ``build_demo`` lays out the tabs, ``create_app`` serves them with the
source view, ``open_app`` builds both from settings, ``serve`` runs the server. No retrieval
logic of its own.

- ``demo.py``     the layout (Ask, Check a quote, Evaluate, Library)
- ``handlers.py`` what each control does: call the library, render the result
- ``render.py``   HTML rendering; all document and user text made inert
- ``source.py``   the source view page (/source?doc=...&start=...&end=...)
- ``script.py``   the page's one script: new answers scrolled into view, readable labels
- ``server.py``   FastAPI + Gradio, exposure warning, a background server for tests
"""

from __future__ import annotations

from assistant.ui.demo import build_demo
from assistant.ui.server import create_app, exposure_warning, open_app, running, serve

__all__ = ["build_demo", "create_app", "exposure_warning", "open_app", "running", "serve"]
