"""The embedder on ONNX Runtime (``--backend onnx``): the same vectors as PyTorch, its own name
in the manifest and the cache keys, an export made once and reused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from assistant import embedding
from assistant.cli import main
from assistant.config import Settings
from assistant.embedding import OnnxEncoder, index_model_name, split_model_name
from assistant.errors import IndexMismatchError, InputError
from assistant.pipeline import Assistant
from assistant.store import build_index, load_index
from conftest import DATA, SQUAD, FakeEncoder


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("assistant-cache")


@pytest.fixture(scope="session")
def onnx_encoder(onnx_cache: Path, real_encoder) -> OnnxEncoder:
    """The packaged model exported once per session into ``onnx_cache`` (``ASSISTANT_CACHE``)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ASSISTANT_CACHE", str(onnx_cache))
        encoder = OnnxEncoder()
        encoder.session  # noqa: B018 - export and load now, once
    return encoder


def varied_texts(real_encoder) -> list[str]:
    """Questions, passages, a whole article (longer than the model reads), odd characters and near-empty ones."""
    questions = [json.loads(line)["question"] for line in (SQUAD / "questions.jsonl").read_text().splitlines()[:20]]
    article = (SQUAD / "corpus" / "Beyonce.txt").read_text(encoding="utf-8")
    passages = [p for p in article.split("\n") if len(p) > 200][:8]
    texts = [*questions, *passages, article[:6000], " ", ".", "Ünïcödé façade — naïve café 東京 ☃",
             "word " * 300, "UPPER case AND lower", "3.14159 + 2 = 5.14159?"]
    assert real_encoder.count_tokens(article[:6000]) > 256 and real_encoder.count_tokens("word " * 300) > 256
    return texts


def test_onnx_vectors_match_torch(real_encoder, onnx_encoder: OnnxEncoder) -> None:
    texts = varied_texts(real_encoder)
    onnx = onnx_encoder.encode(texts)
    torch = real_encoder.encode(texts)
    assert onnx.dtype == np.float32 and onnx.shape == torch.shape == (len(texts), 384)
    assert onnx_encoder.dimension == real_encoder.dimension
    np.testing.assert_allclose(np.linalg.norm(onnx, axis=1), 1.0, atol=1e-5)
    cosine = (onnx * torch).sum(axis=1)
    assert cosine.min() >= 0.9999, [(texts[i][:40], float(cosine[i])) for i in np.flatnonzero(cosine < 0.9999)]


def test_onnx_vectors_do_not_depend_on_the_batch(real_encoder, onnx_encoder: OnnxEncoder) -> None:
    """Padding to the longest text of a batch changes nothing: one at a time gives the same rows."""
    texts = varied_texts(real_encoder)
    together = onnx_encoder.encode(texts)
    alone = np.vstack([onnx_encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_onnx_counts_tokens_as_torch(real_encoder, onnx_encoder: OnnxEncoder) -> None:
    texts = varied_texts(real_encoder)
    assert [onnx_encoder.count_tokens(t) for t in texts] == [real_encoder.count_tokens(t) for t in texts]
    assert onnx_encoder.max_tokens == real_encoder.max_tokens == 256


def test_the_export_is_reused(onnx_cache: Path, onnx_encoder: OnnxEncoder, monkeypatch: pytest.MonkeyPatch) -> None:
    exported = list(onnx_cache.glob("onnx/*/*"))
    assert [p.name for p in exported] == ["model.onnx"]  # no temporary file left beside it
    assert exported[0].parent.name.startswith("all-MiniLM-L6-v2-")  # the model, then a hash of its weights
    before = exported[0].stat().st_mtime_ns

    def no_export(folder: Path, path: Path) -> None:
        raise AssertionError("exported again")

    monkeypatch.setenv("ASSISTANT_CACHE", str(onnx_cache))
    monkeypatch.setattr(embedding, "_export", no_export)
    again = OnnxEncoder()
    assert again.encode(["reused"]).shape == (1, 384)
    assert exported[0].stat().st_mtime_ns == before


def test_a_failed_export_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def half_export(folder: Path, path: Path) -> None:
        path.write_bytes(b"half a model")
        raise RuntimeError("interrupted")

    monkeypatch.setenv("ASSISTANT_CACHE", str(tmp_path))
    monkeypatch.setattr(embedding, "_export", half_export)
    with pytest.raises(RuntimeError, match="interrupted"):
        embedding.onnx_file(OnnxEncoder().folder, "all-MiniLM-L6-v2")
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


def test_the_onnx_backend_needs_a_local_model_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="onnx backend.*--backend torch"):
        OnnxEncoder(str(tmp_path / "no-such-model")).count_tokens("a")


def test_backend_names() -> None:
    assert index_model_name("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert index_model_name("sentence-transformers/all-MiniLM-L6-v2", "onnx") == "all-MiniLM-L6-v2+onnx"
    assert OnnxEncoder().name == "all-MiniLM-L6-v2+onnx"
    assert split_model_name("all-MiniLM-L6-v2+onnx") == ("all-MiniLM-L6-v2", "onnx")
    assert split_model_name("/models/a+b") == ("/models/a+b", "torch")
    with pytest.raises(InputError, match="backend must be one of torch, onnx"):
        Settings(backend="tensorflow")


def test_the_manifest_carries_the_backend(fake_settings: Settings) -> None:
    onnx = fake_settings.with_(backend="onnx")
    build_index(onnx, FakeEncoder())
    assert load_index(onnx.index_dir).model == "fake-encoder+onnx"
    assert Assistant.open(onnx, FakeEncoder()).index.model == "fake-encoder+onnx"
    with pytest.raises(IndexMismatchError, match=r"built with the onnx backend, not the torch one asked for. "
                       r"Ask with --model 'fake-encoder' --backend onnx, or rebuild for the new backend"):
        Assistant.open(fake_settings, FakeEncoder())
    with pytest.raises(IndexMismatchError, match=r"built with the onnx backend.*--rebuild"):
        build_index(fake_settings, FakeEncoder())
    torch_built = fake_settings.with_(index_dir=fake_settings.index_dir.parent / "torch-index")
    build_index(torch_built, FakeEncoder())
    with pytest.raises(IndexMismatchError, match=r"Ask with --model 'fake-encoder' --backend torch, or rebuild "
                       r"for the new backend with `assistant index --rebuild --model 'fake-encoder' --backend onnx`"):
        Assistant.open(torch_built.with_(backend="onnx"), FakeEncoder())


def test_vectors_of_another_backend_are_not_reused(fake_settings: Settings) -> None:
    built = build_index(fake_settings, FakeEncoder())
    rebuilt = build_index(fake_settings.with_(backend="onnx"), FakeEncoder(), rebuild=True)
    assert rebuilt.chunks_embedded == built.chunks_embedded == built.chunks > 0
    assert rebuilt.sentences_embedded == built.sentences_embedded > 0
    again = build_index(fake_settings.with_(backend="onnx"), FakeEncoder(), rebuild=True)
    assert again.chunks_embedded == again.sentences_embedded == 0  # its own vectors are


def test_cli_builds_and_asks_with_the_onnx_backend(onnx_cache: Path, onnx_encoder: OnnxEncoder, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CACHE", str(onnx_cache))
    options = ["--corpus", str(DATA / "mini"), "--index", str(tmp_path / "index"), "--reader", "none"]
    runner = CliRunner()
    built = runner.invoke(main, ["index", *options, "--backend", "onnx", "--json"])
    assert built.exit_code == 0, built.output
    assert load_index(tmp_path / "index").model == "all-MiniLM-L6-v2+onnx"
    asked = runner.invoke(main, ["ask", "What does the lantern look like?", *options, "--json"],
                          env={"ASSISTANT_BACKEND": "onnx"})
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.stdout)["passages"]
    refused = runner.invoke(main, ["ask", "What does the lantern look like?", *options])
    assert refused.exit_code == 2
    assert "built with the onnx backend, not the torch one asked for" in refused.stderr
    assert "--backend onnx" in refused.stderr and "Traceback" not in refused.output
