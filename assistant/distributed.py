"""Chunking and embedding on a Ray cluster: ``assistant index --ray auto|ADDRESS``.

``build_index`` (build.py) runs as always: it takes the write lock, decides which documents are
new or changed, finds their texts in the embedding cache, and writes the version (the same
files, the same manifest, the same switch of CURRENT). Only its chunk-and-embed step runs on the
cluster, as a Ray Data pipeline over the new and changed documents::

    from_items(documents)            the documents build_index loaded (read in this process)
    -> map_batches(_chunk)           their chunk and sentence spans (build.span_maker)
    -> map_batches(_Embedder)        an actor pool, one actor per CPU of the cluster, each holding
                                     the model: the vectors of the texts the cache does not hold
    -> this process                  rows in document order; the cache's vectors for the rest
                                     (build.embedded_rows)

Ray Data fuses the two map steps into one operator, so each actor chunks a block of documents
(one document, or up to DOCUMENTS_PER_BLOCK on a large corpus) and embeds its texts; a block
goes to whichever actor is free.

Ray is imported only here, and this module only when ``--ray`` is given: it comes with the
scale extra (``pip install -e '.[scale]'``). Every node of a cluster needs the assistant
installed, as here.
"""

from __future__ import annotations

import logging
import pickle
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np

from assistant.build import KINDS, ChunkAndEmbed, embedded_rows, span_maker
from assistant.config import Settings
from assistant.embedding import Encoder
from assistant.embedding_cache import VectorCache, text_keys
from assistant.errors import InputError
from assistant.runtime import configure_process
from assistant.types import Document

SCALE_EXTRA = "install the scale extra: pip install -e '.[scale]'"
DOCUMENTS_PER_BLOCK = 100  # at most, in a block of the pipeline; and at least 4 blocks a worker
SPANS = ("number", "kind", "seq", "start", "end")  # a span: fresh document, KINDS index, place in its kind


def on_ray(address: str, make_encoder: Callable[[], Encoder]) -> ChunkAndEmbed:
    """``build_index``'s chunk-and-embed step, run on the Ray cluster at ``address`` (``ray_session``).

    ``make_encoder`` makes the encoder in each worker: a function or class the workers can
    import (``functools.partial(encoder_for, name, batch_size)``), not a loaded model.
    """

    def step(fresh: list[Document], settings: Settings, encoder: Encoder, model: str, cache: VectorCache,
             progress: bool) -> list[tuple[dict, int]]:
        if not fresh:  # nothing new to chunk: no cluster needed
            return [({}, 0) for _ in KINDS]
        with ray_session(address):
            rows = _run(fresh, settings, model, cache.known(encoder.dimension), make_encoder, progress)
        order = np.lexsort((rows["seq"], rows["number"], rows["kind"]))  # by kind, document, place
        rows = {name: column[order] for name, column in rows.items()}
        out = []
        for kind_no in range(len(KINDS)):
            mine = rows["kind"] == kind_no
            spans = np.stack([rows["start"][mine], rows["end"][mine]], axis=1)
            bounds = np.cumsum(np.bincount(rows["number"][mine], minlength=len(fresh)))[:-1]
            by_doc = {doc.doc_id: doc_spans for doc, doc_spans in zip(fresh, np.split(spans, bounds))}
            vectors = rows["vector"][mine]
            by_doc, _ = embedded_rows(fresh, by_doc, model, cache, encoder.dimension,
                                      lambda texts, missing, vectors=vectors: vectors[missing])
            out.append((by_doc, int(rows["embedded"][mine].sum())))  # what the actors embedded
        return out

    return step


@contextmanager
def ray_session(address: str) -> Iterator[None]:
    """Connected to a Ray cluster for the block; disconnected after (a Ray started here is stopped).

    ``address``: ``auto`` joins the cluster this machine belongs to (``RAY_ADDRESS``, or one
    started with ``ray start``) and else starts a Ray on this machine's cores; ``HOST:PORT`` a
    cluster's head node (its GCS port, 6379 by default); ``ray://HOST:PORT`` through Ray Client.
    Raises InputError when Ray is not installed or the cluster cannot be reached.
    """
    try:
        import ray
    except ImportError as exc:
        raise InputError(f"--ray needs Ray, which is not installed here; {SCALE_EXTRA}") from exc
    if address != "auto":
        _check_reachable(address)
    try:
        ray.init(address=None if address == "auto" else address, logging_level=logging.WARNING)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise InputError(f"cannot join the Ray cluster at {address}: {exc}") from exc
    try:
        yield
    finally:
        ray.shutdown()


def _check_reachable(address: str) -> None:
    """Fail at once, in the user's terms, when nothing listens at ``address`` (Ray itself would retry for 20 s)."""
    host, colon, port = address.removeprefix("ray://").rpartition(":")
    if not (colon and host and port.isdigit()):
        raise InputError(f"{address!r} is not a Ray cluster address: give auto, HOST:PORT (the head node's port, "
                         "6379 by default) or ray://HOST:PORT (Ray Client, 10001 by default)")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError(f"cannot reach the Ray cluster at {address} ({exc.strerror or exc}): check the address, "
                         "start the cluster with `ray start --head` on its head node, or use --ray auto for a "
                         "Ray on this machine") from exc


def _run(fresh: list[Document], settings: Settings, model: str, known: np.ndarray,
         make_encoder: Callable[[], Encoder], progress: bool) -> dict[str, np.ndarray]:
    """The pipeline: every span of the fresh documents with its vector and whether it was embedded
    (not where its key is ``known``: zeros then), in any order."""
    import ray

    ray.data.DataContext.get_current().enable_progress_bars = progress  # Ray Data's own, per operator
    workers = max(1, int(ray.cluster_resources().get("CPU", 1)))
    blocks = min(len(fresh), max(4 * workers, -(-len(fresh) // DOCUMENTS_PER_BLOCK)))
    dataset = (
        # Arrow has no type for a Document: each travels pickled
        ray.data.from_items([{"number": number, "document": pickle.dumps(doc)} for number, doc in enumerate(fresh)],
                            override_num_blocks=blocks)
        .map_batches(_chunk, fn_kwargs={"make_encoder": make_encoder, "settings": settings})
        .map_batches(_Embedder, num_cpus=1,
                     fn_constructor_kwargs={"make_encoder": make_encoder, "model": model, "known": known},
                     # one block at a time per actor: the next goes to whichever actor is free
                     compute=ray.data.ActorPoolStrategy(size=workers, max_tasks_in_flight_per_actor=1))
    )
    parts = list(dataset.iter_batches(batch_size=None, batch_format="numpy"))
    return {name: np.concatenate([part[name] for part in parts]) for name in (*SPANS, "vector", "embedded")}


def _chunk(batch: dict[str, np.ndarray], make_encoder: Callable[[], Encoder], settings: Settings
           ) -> dict[str, np.ndarray]:
    """The spans (SPANS) and texts of a batch of documents, in a Ray worker."""
    configure_process()  # a worker process is set up as this one: offline, passive threads
    spans_of = span_maker(make_encoder().count_tokens, settings)
    rows, texts = [], []
    for number, pickled in zip(batch["number"].tolist(), batch["document"]):
        doc = pickle.loads(pickled)
        spans = spans_of(doc)
        for kind_no, kind in enumerate(KINDS):
            for seq, (start, end) in enumerate(spans[kind]):
                rows.append((number, kind_no, seq, start, end))
                texts.append(doc.text[start:end])
    table = np.array(rows, np.int64).reshape(-1, len(SPANS))
    return {**{name: table[:, i] for i, name in enumerate(SPANS)}, "text": np.array(texts, dtype=object)}


class _Embedder:
    """A Ray actor holding the model: a batch's spans with the vectors of their texts and whether
    each was embedded: not those whose vectors the cache holds (their keys are ``known``), zeros then."""

    def __init__(self, make_encoder: Callable[[], Encoder], model: str, known: np.ndarray) -> None:
        configure_process()
        self.encoder = make_encoder()
        self.model = model
        self.known = known

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        texts = batch["text"].tolist()
        todo = ~np.isin(text_keys(self.model, texts), self.known)
        vectors = np.zeros((len(texts), self.encoder.dimension), np.float32)
        if todo.any():
            vectors[todo] = self.encoder.encode([text for text, new in zip(texts, todo) if new])
        return {**{name: batch[name] for name in SPANS}, "vector": vectors, "embedded": todo}
