"""The web server: the Gradio app mounted on FastAPI beside the source view route.

``open_app`` loads the index, model and reader of some settings and returns the served app
(what `assistant serve` and app.py run); ``create_app`` returns an ASGI app (run it with
``serve`` or any ASGI server); ``running`` serves one in a background thread, on a socket bound
before it starts, for tests and tools.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import gradio as gr
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistant.config import Settings
from assistant.pipeline import Assistant, LiveAssistant
from assistant.ui.demo import build_demo
from assistant.ui.handlers import as_live
from assistant.ui.script import SCRIPT
from assistant.ui.source import refused, source_page
from assistant.ui.style import CSS

Auth = tuple[str, str] | None
SOURCE_PATH = "/source"  # assistant.ui.render.source_link builds addresses under it
EVENT_STREAM = "/gradio_api/queue/data"  # a page's stream of event results (Gradio's SSE protocol)
PAGE_STREAMS = (EVENT_STREAM, "/gradio_api/heartbeat/")  # held open by each open page
SHUTDOWN_GRACE = 3  # seconds the open pages' streams get to end after Ctrl+C; without a limit they hold the server


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, auth: Auth) -> str | None:
    """A warning to print when the app would be reachable from other machines without a password."""
    if is_loopback(host) or auth is not None:
        return None
    return (f"WARNING: serving on {host}, reachable from other machines, with no password: anyone who can "
            "reach this address can read the whole corpus. Set ASSISTANT_PASSWORD (and ASSISTANT_USER) "
            "or bind to 127.0.0.1.")


def _gradio_app(app: FastAPI) -> FastAPI:
    return next(route.app for route in app.routes if isinstance(route, Mount) and route.path == "")


def _logged_in(gradio_app: FastAPI, request: Request) -> bool:
    # Gradio's own check (gradio.routes.App.create_app, get_current_user): the login form
    # sets this cookie, and the token maps to the user name.
    cookie_id = gradio_app.cookie_id  # type: ignore[attr-defined]
    cookies = request.cookies
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return token is not None and gradio_app.tokens.get(token) is not None  # type: ignore[attr-defined]


class HeldEventStream:
    """ASGI middleware: a page's stream of event results stays open while the page is there.

    Gradio's server ends a page's stream (``close_stream``) as soon as none of the page's events
    is pending, and the page opens a new stream with its next event. When that next event is
    joined just as the stream closes, the page may read the answer to its join before the close
    message: it then takes the stream for open, opens none, and the event's result is never
    delivered; its timer counts up for ever. So the close message is held back and Gradio's
    stream continued on the same connection: the page never has to reopen it, and the stream
    ends when the page goes away (or, with Gradio's message, when the server stops).

    When the server stops, the streams of pages still open (this one and Gradio's heartbeat)
    are cancelled after ``SHUTDOWN_GRACE``; they end quietly rather than as errors.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PAGE_STREAMS):
            await self.app(scope, receive, send)
            return
        started = ended = False

        async def tracked(message: Message) -> None:
            nonlocal started, ended
            await send(message)
            started = True
            ended = message["type"] == "http.response.body" and not message.get("more_body", False)

        try:
            if scope["path"] == EVENT_STREAM:
                await self._held(scope, receive, tracked)
            else:
                await self.app(scope, receive, tracked)
        except asyncio.CancelledError:  # the server is stopping and the page is still open
            if started and not ended:
                await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _held(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False
        while True:
            held: Message | None = None
            stopping = False

            async def relay(message: Message) -> None:
                nonlocal started, held, stopping
                if message["type"] == "http.response.start":
                    if not started:  # a continued stream is part of the first response
                        started = True
                        await send(message)
                    return
                body = message.get("body", b"")
                stopping = stopping or b'"server_stopped"' in body
                if b'"close_stream"' in body:
                    held = message
                elif body:
                    await send({**message, "more_body": True})

            try:
                await self.app(scope, receive, relay)
            except Exception:
                if not started:
                    raise
                break  # Gradio has told the page what went wrong
            if held is None or stopping:
                break
        if held is not None:
            await send({**held, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def create_app(demo: gr.Blocks, assistant: Assistant | LiveAssistant, *, auth: Auth = None,
               host: str = "127.0.0.1", port: int = 7860, max_file_size: str = "5mb") -> FastAPI:
    """The ASGI app: ``demo`` at ``/`` and the source view of ``assistant``'s documents at ``/source``.

    Pass the LiveAssistant given to ``build_demo`` so that both follow index rebuilds together.
    With ``auth`` (user, password) both ask for the same login.
    """
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    live = as_live(assistant)

    @app.get(SOURCE_PATH, response_class=HTMLResponse, include_in_schema=False)
    def source(request: Request, doc: str | None = None, start: str | None = None,
               end: str | None = None) -> HTMLResponse:
        if auth is not None and not _logged_in(_gradio_app(app), request):
            page = refused("Log in first: open the assistant, sign in, then follow the link again.", 401)
        else:
            page = source_page(live.current().index.by_id, doc, start, end)
        return HTMLResponse(page.html, status_code=page.status, headers=page.headers)

    app.add_middleware(HeldEventStream)
    return gr.mount_gradio_app(
        app, demo, path="/", auth=auth, server_name=host, server_port=port, css=CSS,
        footer_links=["api", "gradio", "settings"], run_history=False, max_file_size=max_file_size,
        allowed_paths=[], show_error=True, js=SCRIPT,
    )


@dataclass
class Served:
    """What ``open_app`` made: the ASGI app, its Gradio demo and the live assistant behind both."""

    app: FastAPI
    demo: gr.Blocks
    live: LiveAssistant


def open_app(settings: Settings, *, host: str = "127.0.0.1", port: int = 7860, auth: Auth = None) -> Served:
    """Load the index, model and reader once, warm them up, and build the app around them.

    Each request uses the newest index version (``LiveAssistant``): `assistant index` needs no
    restart. Raises AssistantError when the index cannot be opened.
    """
    assistant = Assistant.open(settings)
    assistant.ask("warm-up")  # now, rather than during the first visitor's question
    live = LiveAssistant(assistant)
    demo = build_demo(live)
    return Served(create_app(demo, live, auth=auth, host=host, port=port), demo, live)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve ``app`` until interrupted (blocks)."""
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=SHUTDOWN_GRACE)


@dataclass
class Running:
    """A server started by ``running``: its base URL and the uvicorn server."""

    url: str
    server: uvicorn.Server


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1", port: int = 0) -> Iterator[Running]:
    """Serve ``app`` in a background thread; ``port=0`` picks a free port. Stops on exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=SHUTDOWN_GRACE))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        for _ in range(600):
            if server.started or not thread.is_alive():
                break
            time.sleep(0.05)
        if not server.started:
            raise RuntimeError(f"the app did not start on {host}:{port}")
        yield Running(f"http://{host}:{port}", server)
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        sock.close()

