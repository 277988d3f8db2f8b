"""`assistant index --ray`: the Ray Data pipeline builds the index one process builds.

A local Ray cluster is started once for the module, as a cluster is laid out: a head node with
no CPU, which only schedules, and two worker nodes of one CPU each, where the chunking tasks and
the two embedding actors run in processes of their own. It is shut down after the module.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from assistant.cli import main
from assistant.config import Settings
from assistant.distributed import on_ray
from assistant.layout import current_version, load_index, read_manifest
from assistant.store import build_index
from conftest import REPO, FakeEncoder

# Files whose bytes hold vectors, which agree within float tolerance, not bit for bit.
VECTOR_FILES = {"chunk_vectors.npy", "sentence_vectors.npy", "chunks.faiss"}


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """The address of a Ray cluster of a head node without CPU and two one-CPU worker nodes."""
    from ray.cluster_utils import Cluster

    # The workers import this checkout's `assistant`, and `conftest` for the FakeEncoder.
    paths = [str(REPO), str(REPO / "tests"), os.environ.get("PYTHONPATH", "")]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", os.pathsep.join(p for p in paths if p))
        nodes = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
        for _ in range(2):
            nodes.add_node(num_cpus=1)
        nodes.wait_for_nodes()
    yield nodes.address
    nodes.shutdown()


def _index_cli(*args: str) -> object:
    return CliRunner().invoke(main, ["index", *args], catch_exceptions=False)


def _assert_same_index(one: Path, other: Path) -> None:
    """The same documents, spans, keys and manifest; vectors within float tolerance."""
    first, second = load_index(one), load_index(other)
    assert [d.to_dict() for d in second.documents] == [d.to_dict() for d in first.documents]
    np.testing.assert_array_equal(second.chunk_rows, first.chunk_rows)
    np.testing.assert_array_equal(second.sentence_rows, first.sentence_rows)
    np.testing.assert_array_equal(second.chunk_keys, first.chunk_keys)
    np.testing.assert_array_equal(second.sentence_keys, first.sentence_keys)
    assert [second.documents[d].text[s:e] for d, s, e in second.chunk_rows.tolist()] == [
        first.chunk(i).text for i in range(len(first))]
    assert np.abs(second.chunk_vectors - first.chunk_vectors).max() < 1e-5
    assert np.abs(second.sentence_vectors - first.sentence_vectors).max() < 1e-5
    manifests = [read_manifest(index / current_version(index)) for index in (one, other)]
    for manifest in manifests:
        del manifest["created_at"]
        for name in VECTOR_FILES:
            del manifest["files"][name]["sha256"]
    assert manifests[1] == manifests[0]


@pytest.mark.parametrize("address, message", [
    ("127.0.0.1:{port}", "cannot reach the Ray cluster at 127.0.0.1:{port} (Connection refused)"),
    ("head-node", "'head-node' is not a Ray cluster address: give auto, HOST:PORT"),
], ids=["nothing-listens", "no-port"])
def test_an_unreachable_cluster_is_named_before_anything_is_written(tmp_path: Path, address: str,
                                                                    message: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = _index_cli("--ray", address.format(port=port), "--corpus", str(REPO / "corpus"),
                        "--index", str(tmp_path / "index"))
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {message.format(port=port)}"), result.stderr
    assert "Traceback" not in result.stderr
    assert current_version(tmp_path / "index") is None


def test_without_ray_the_message_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as where it is not installed
    result = _index_cli("--ray", "auto", "--corpus", str(REPO / "corpus"), "--index", str(tmp_path / "index"))
    assert result.exit_code == 2
    assert result.stderr == ("error: --ray needs Ray, which is not installed here; "
                             "install the scale extra: pip install -e '.[scale]'\n")


def test_ray_builds_the_seed_index_one_process_builds(cluster: str, seed_index: Settings, tmp_path: Path) -> None:
    """The real model in two actors on two worker nodes: the same chunks, sentences and offsets,
    and vectors within float tolerance of the single-process build's."""
    result = _index_cli("--ray", cluster, "--corpus", str(seed_index.corpus_dir), "--index", str(tmp_path / "index"),
                        "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    _assert_same_index(seed_index.index_dir, tmp_path / "index")
    single = load_index(seed_index.index_dir)
    assert report["chunks"] == report["chunks_embedded"] == len(single.chunk_rows)  # nothing cached: all embedded
    assert report["sentences_embedded"] == len(single.sentence_rows)


def test_an_update_on_ray_embeds_only_what_one_process_embeds(cluster: str, fake_settings: Settings,
                                                               tmp_path: Path) -> None:
    """Changed, added and deleted documents after a first build: the Ray update reuses the same
    cached vectors, embeds the same texts and writes the same index as the one-process update."""
    build_index(fake_settings, FakeEncoder())
    on_ray_settings = fake_settings.with_(index_dir=tmp_path / "ray-index")
    shutil.copytree(fake_settings.index_dir, on_ray_settings.index_dir)
    corpus = fake_settings.corpus_dir
    repeat = corpus / "repeat.txt"
    repeat.write_text(repeat.read_text(encoding="utf-8") + "\n\nA closing paragraph about the amber lantern.\n",
                      encoding="utf-8")
    (corpus / "added.md").write_text("# Added\n\nThe violet harbour opened in spring. It closed in autumn.\n",
                                     encoding="utf-8")
    (corpus / "page.html").unlink()

    single = build_index(fake_settings, FakeEncoder())
    ray = build_index(on_ray_settings, FakeEncoder(), chunk_and_embed=on_ray(cluster, FakeEncoder))
    assert (single.added, single.changed, single.deleted) == (["added"], ["repeat"], ["page"])
    assert (ray.added, ray.changed, ray.deleted, ray.unchanged) == (single.added, single.changed, single.deleted,
                                                                    single.unchanged)
    assert (ray.chunks, ray.chunks_embedded, ray.sentences, ray.sentences_embedded) == (
        single.chunks, single.chunks_embedded, single.sentences, single.sentences_embedded)
    _assert_same_index(fake_settings.index_dir, on_ray_settings.index_dir)
    # the edited document's unchanged texts came from the cache, on Ray too
    records = read_manifest(on_ray_settings.index_dir / current_version(on_ray_settings.index_dir))["documents"]
    assert 0 < ray.chunks_embedded < records["added"]["chunks"] + records["repeat"]["chunks"]
    assert 0 < ray.sentences_embedded < records["added"]["sentences"] + records["repeat"]["sentences"]
