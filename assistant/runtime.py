"""Process set-up, done once where a program starts: ``configure_process()``.

The libraries below the assistant read these variables once, when they are loaded, so the
entry points (the CLI, app.py, the benchmark and training scripts, the tests' conftest) call
``configure_process`` before torch, FAISS, gradio or huggingface_hub is imported. Importing
``assistant`` changes nothing in the environment.

- ``HF_HUB_OFFLINE`` and ``TRANSFORMERS_OFFLINE``: the assistant never downloads a model or
  data at run time.
- ``OMP_WAIT_POLICY=PASSIVE``: OpenMP threads (torch's and FAISS's) that spin while they wait
  for each other made embedding and search many times slower on a busy machine
  (bench/README.md, "Threads on a shared two-core machine").
- ``OMP_NUM_THREADS`` when ``threads`` is given: the OpenMP threads of torch, FAISS and the
  BLAS under NumPy. A process that answers one question at a time (``ask``, ``quote``,
  ``eval``, the app) runs on one thread; one that builds an index keeps every core.
- ``GRADIO_ANALYTICS_ENABLED=False``: no telemetry from the app.

A value the user has set is kept, except the offline flags. Only the first call in a process
counts: the program's own entry point decides, and a command run inside it later (the CLI
called from a test, a benchmark module imported by the suite) changes nothing.
"""

from __future__ import annotations

import os

QUERY_THREADS = 1  # OpenMP threads of a process that answers one question at a time
_configured = False


def configure_process(*, threads: int | None = None) -> None:
    """Set the environment above; ``threads``: OpenMP threads (None: the libraries' default, all cores)."""
    global _configured
    if _configured:
        return
    _configured = True
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    if threads is not None:
        os.environ.setdefault("OMP_NUM_THREADS", str(threads))
