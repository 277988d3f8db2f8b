"""Test-only entry point: ``assistant index`` with the FakeEncoder, for the crash tests.

    python tests/fake_indexer.py index --corpus C --index I --model fake-encoder [--rebuild]

With ``ASSISTANT_TEST_PAUSE=POINT`` and ``ASSISTANT_TEST_PAUSED=FILE`` in the environment, the
process creates FILE when it reaches POINT and then waits there to be killed:

    encode       embedding the chunks: the previous index is loaded, nothing is written yet
    write:NAME   half of the new version's file NAME is written (by the store or by a library:
                 bm25s writes the bm25.* files)
    rename       the new version is complete in its temporary folder, not yet renamed into place
    pointer      the new version is in place, CURRENT not yet switched to it
    switched     CURRENT is switched, older versions are not yet pruned

The hooks wrap the encoder, ``Path.open``, the built-in ``open`` and ``os.rename``/``os.replace``,
not the store's own functions, so they survive changes to the store; a point the build never reaches makes
the process exit with status 3, which the tests report. Nothing here is used by the library.
"""

from __future__ import annotations

import builtins
import os
import pathlib
import signal
import sys

sys.path.insert(0, os.path.dirname(__file__))

from conftest import FakeEncoder  # noqa: E402

POINT = os.environ.get("ASSISTANT_TEST_PAUSE", "")
PAUSED = os.environ.get("ASSISTANT_TEST_PAUSED", "")
NOT_REACHED = 3


def pause(point: str) -> None:
    """Stop here for good if ``point`` is the one asked for; the test kills the process."""
    if point != POINT:
        return
    pathlib.Path(PAUSED).write_text(str(os.getpid()))
    while True:
        signal.pause()


class PausingEncoder(FakeEncoder):
    def __init__(self, name: str = "fake-encoder", batch_size: int = 32) -> None:
        super().__init__()

    def encode(self, texts: list[str], **kwargs: object):  # noqa: ANN201
        pause("encode")
        return super().encode(texts, **kwargs)


_open = pathlib.Path.open
_builtin_open = builtins.open


class _HalfWriter:
    """A file that writes half of what it is given, then pauses."""

    def __init__(self, fh) -> None:  # noqa: ANN001
        self.fh = fh

    def __enter__(self) -> _HalfWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.fh.close()

    def write(self, data: bytes) -> int:
        self.fh.write(data[: len(data) // 2])
        self.fh.flush()
        os.fsync(self.fh.fileno())
        pause(POINT)
        return len(data)

    def __getattr__(self, name: str):  # noqa: ANN204
        return getattr(self.fh, name)


def _pausing(path: pathlib.Path, mode: str, fh):  # noqa: ANN001, ANN202
    if POINT == f"write:{path.name}" and "w" in mode and path.parent.name.startswith(".tmp-"):
        return _HalfWriter(fh)
    return fh


def _path_open(self: pathlib.Path, mode: str = "r", *args: object, **kwargs: object):  # noqa: ANN202
    return _pausing(self, mode, _open(self, mode, *args, **kwargs))


def _any_open(file, mode: str = "r", *args: object, **kwargs: object):  # noqa: ANN001, ANN202
    fh = _builtin_open(file, mode, *args, **kwargs)
    return fh if isinstance(file, int) else _pausing(pathlib.Path(os.fsdecode(file)), mode, fh)


def _moving(real):  # noqa: ANN001, ANN202
    def move(src, dst, *args, **kwargs):  # noqa: ANN001, ANN202
        name = os.path.basename(os.fspath(dst))
        if name == "CURRENT":
            pause("pointer")
            done = real(src, dst, *args, **kwargs)
            pause("switched")
            return done
        if name.startswith("v-"):
            pause("rename")
        return real(src, dst, *args, **kwargs)

    return move


def main() -> None:
    import assistant.embedding
    import assistant.store  # noqa: F401 - imported before the start is announced
    from assistant.cli import main as cli

    assistant.embedding.SentenceTransformerEncoder = PausingEncoder  # the CLI imports it at call time
    pathlib.Path.open = _path_open
    builtins.open = _any_open
    os.rename = _moving(os.rename)
    os.replace = _moving(os.replace)
    if os.environ.get("ASSISTANT_TEST_STARTED"):
        pathlib.Path(os.environ["ASSISTANT_TEST_STARTED"]).write_text(str(os.getpid()))
    code: object = 0
    try:
        cli(sys.argv[1:], prog_name="assistant")
    except SystemExit as exc:
        code = exc.code
    sys.exit(NOT_REACHED if POINT and code in (0, None) else code)


if __name__ == "__main__":
    main()
