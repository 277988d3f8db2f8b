"""Source-grounded extractive question answering.

Every answer is a verbatim span of a corpus document, with its character offsets.
"""

from __future__ import annotations

import os

# The assistant never downloads models or data at run time. This must be set before
# huggingface_hub is imported (by sentence-transformers or gradio), so it lives here.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# OpenMP threads (torch's and FAISS's) that wait for each other by spinning made embedding
# and search many times slower on a busy machine (bench/README.md). OpenMP reads this once,
# when each library is loaded, so it is set here, before any of them; a user's value is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
