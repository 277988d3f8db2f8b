"""Offline: loading the model and the reader, indexing, answering and checking quotes open no network connection.

The work runs in a fresh interpreter in which every socket connection and name lookup that is
not for this machine is refused and recorded before anything else is imported, and without the
HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE variables that the Makefile and the entry points set
(``assistant.runtime.configure_process``), which importing the library does not set either, so
the test proves the code itself asks for nothing (and not only that those variables are respected).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.config import DEFAULT_READER
from conftest import DATA, ON_MILVUS, REPO

GUARD = r'''
import ipaddress
import socket

attempts = []


def _local(host) -> bool:
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _check(address) -> None:
    if isinstance(address, tuple) and not _local(address[0]):
        attempts.append(f"connect {address!r}")
        raise OSError(f"the network is blocked in this test: connect {address!r}")


_connect, _connect_ex, _getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo


def connect(self, address):
    _check(address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(address)
    return _connect_ex(self, address)


def getaddrinfo(host, *args, **kwargs):
    if not _local(host.decode() if isinstance(host, bytes) else host):
        attempts.append(f"lookup {host!r}")
        raise socket.gaierror(f"the network is blocked in this test: lookup {host!r}")
    return _getaddrinfo(host, *args, **kwargs)


socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
'''

WORK = r'''
import json
import os
import socket
import sys
from pathlib import Path

# The guard works: a remote address is refused and recorded, loopback is not.
try:
    socket.create_connection(("198.51.100.7", 80), timeout=2)
except OSError:
    pass
server = socket.create_server(("127.0.0.1", 0))
socket.create_connection(server.getsockname(), timeout=2).close()
server.close()
guard_works = attempts == ["lookup '198.51.100.7'"] or attempts == ["connect ('198.51.100.7', 80)"]
attempts.clear()

before = dict(os.environ)
from assistant.config import Settings
from assistant.embedding import SentenceTransformerEncoder
from assistant.pipeline import Assistant
from assistant.store import build_index
from assistant.stores import publish
# Importing the library sets nothing: the offline flags and thread policy are the entry points' job.
env_changed = sorted(k for k in set(before) | set(os.environ) if before.get(k) != os.environ.get(k))

root, store = Path(sys.argv[1]), sys.argv[2]
settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", store=store)
encoder = SentenceTransformerEncoder()  # loaded from the installed package, here
report = build_index(settings, encoder)
publish(settings)  # as `assistant index --store` copies the version into Milvus (nothing for the folder)
assistant = Assistant.open(settings, encoder)  # with the shipped reader, loaded here
response = assistant.ask("How many ships did the lighthouse keeper count?")
check = assistant.check_quote("The Perito Moreno glacier advances about two metres per day.")
print(json.dumps({"guard_works": guard_works, "env_changed": env_changed, "attempts": attempts, "added": report.added,
                  "top": response.passages[0].citation.doc_id, "verdict": check.verdict,
                  "reader": assistant.reader_stamp["name"]}))
'''


@pytest.mark.slow  # the real model and the reader, loaded in a subprocess
def test_indexing_answering_and_quote_checks_stay_on_this_machine(tmp_path: Path) -> None:
    shutil.copytree(DATA / "mini", tmp_path / "corpus")
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    # A Milvus run searches a milvus-lite copy, served and reached on this machine by gRPC, whose
    # own sockets the guard does not see; everything else milvus-lite and pymilvus do goes through it.
    store = f"milvus-lite:{tmp_path / 'offline.db'}" if ON_MILVUS else ""
    done = subprocess.run([sys.executable, "-c", GUARD + WORK, str(tmp_path), store], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["guard_works"], "the socket guard did not catch a remote connection"
    assert result["env_changed"] == [], f"importing the library changed the environment: {result['env_changed']}"
    assert result["attempts"] == [], f"network use: {result['attempts']}"
    assert sorted(result["added"]) == ["notes", "page", "repeat"]
    assert result["top"] == "repeat" and result["verdict"] == "verbatim"
    assert result["reader"] == DEFAULT_READER  # the trained reader was loaded and used under the guard


SETUP = r'''
import json
import os
from assistant.runtime import configure_process

configure_process(threads=1)
configure_process(threads=None)  # a later call changes nothing: the entry point decided
print(json.dumps({k: os.environ.get(k) for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OMP_WAIT_POLICY",
                                                 "OMP_NUM_THREADS", "GRADIO_ANALYTICS_ENABLED")}))
'''


def test_configure_process_sets_offline_and_threads_once_keeping_the_users_values() -> None:
    keys = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "OMP_WAIT_POLICY", "OMP_NUM_THREADS", "GRADIO_ANALYTICS_ENABLED")
    clean = {k: v for k, v in os.environ.items() if k not in keys}
    done = subprocess.run([sys.executable, "-c", SETUP], cwd=REPO, env=clean, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_WAIT_POLICY": "PASSIVE",
                                       "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    mine = clean | {"HF_HUB_OFFLINE": "0", "OMP_WAIT_POLICY": "ACTIVE", "OMP_NUM_THREADS": "2"}
    done = subprocess.run([sys.executable, "-c", SETUP], cwd=REPO, env=mine, capture_output=True, text=True, check=True)
    assert json.loads(done.stdout) == {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_WAIT_POLICY": "ACTIVE",
                                       "OMP_NUM_THREADS": "2", "GRADIO_ANALYTICS_ENABLED": "False"}
