"""Source-grounded extractive question answering.

Every answer is a verbatim span of a corpus document, with its character offsets.
"""

from __future__ import annotations

import os

# The assistant never downloads models or data at run time. This must be set before
# huggingface_hub is imported (by sentence-transformers or gradio), so it lives here.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

__version__ = "0.1.0"
