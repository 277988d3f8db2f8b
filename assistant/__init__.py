"""Source-grounded extractive question answering.

Every answer is a verbatim span of a corpus document, with its character offsets.
Programs call ``assistant.runtime.configure_process()`` first (offline, thread policy).
"""

from __future__ import annotations

__version__ = "0.1.0"
