"""The explorer's web server: a Starlette app (:func:`create_app`) run by uvicorn
(:func:`serve`).

Read-only by construction: every route is ``GET`` (``HEAD``); other methods get 405. The
page and its scripts are package data, Plotly's ``plotly.min.js`` is read from the
installed ``plotly`` package (no CDN: the page works offline); every other answer is JSON
computed from the sources opened at start, addressed by id -- no request names a file.
Answers carry a Content-Security-Policy that allows scripts from this origin only, and the
page inserts every label as text (never as HTML), so an arch string or run name holding
markup is shown, not run. Bound to the loopback interface, the server also refuses requests
whose ``Host`` is not a loopback name (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
import json
import math
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from nasforge.errors import NasforgeError
from nasforge.explore.explorer import Explorer
from nasforge.explore.tables import ExploreError, NotFound, RawJSON

#: Files of the page (package data of ``nasforge.explore``), name -> media type.
STATIC = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
#: Host names a loopback-bound server answers to.
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
CSP = (
    "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self' data: blob:; "
    # Plotly writes <style> elements and style attributes at run time.
    "style-src 'self' 'unsafe-inline'; font-src 'self' data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def is_loopback(host: str) -> bool:
    """Whether ``host`` names only this machine (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _plotly_js() -> bytes:
    """``plotly.min.js`` as shipped inside the installed plotly package."""
    try:
        return resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
    except (ModuleNotFoundError, FileNotFoundError):
        raise NasforgeError(
            "nasforge explore needs plotly (it serves plotly.min.js from the package): "
            "pip install 'nasforge[explore]'"
        ) from None


def _page_files() -> dict[str, bytes]:
    here = resources.files("nasforge.explore").joinpath("static")
    return {name: here.joinpath(name).read_bytes() for name in ("index.html", *STATIC)}


def _jsonable(value: Any) -> Any:
    """NaN / inf -> None, recursively (only called when a dump found one)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _dumps(obj: Any) -> bytes:
    """Compact JSON; :class:`~nasforge.explore.tables.RawJSON` values (top-level keys of a
    dict answer) are spliced in verbatim."""
    raw: dict[str, str] = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            if isinstance(v, RawJSON):
                raw[k] = v
        if raw:
            obj = {k: (f"\x00raw:{k}\x00" if k in raw else v) for k, v in obj.items()}
    try:
        text = json.dumps(obj, allow_nan=False, separators=(",", ":"))
    except ValueError:
        text = json.dumps(_jsonable(obj), allow_nan=False, separators=(",", ":"))
    for k, v in raw.items():
        text = text.replace(json.dumps(f"\x00raw:{k}\x00"), v, 1)
    return text.encode("utf-8")


def create_app(explorer: Explorer, *, allowed_hosts: list[str] | None = None) -> Any:
    """The ASGI app serving ``explorer``. ``allowed_hosts``: the ``Host`` names answered
    (default: loopback names only; ``["*"]`` answers any)."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    page = _page_files()
    plotly = _plotly_js()

    def json_response(obj: Any, status: int = 200) -> Response:
        return Response(
            _dumps(obj),
            status_code=status,
            media_type="application/json",
            headers={"cache-control": "no-store"},
        )

    def answer(
        fn: Callable[[Request], Any],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                return json_response(fn(request))
            except NotFound as exc:
                return json_response({"error": str(exc)}, 404)
            except ExploreError as exc:
                return json_response({"error": str(exc)}, 400)
            except NasforgeError as exc:
                return json_response({"error": str(exc)}, 400)

        return endpoint

    async def index(request: Request) -> Response:
        return Response(page["index.html"], media_type="text/html; charset=utf-8")

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "plotly.min.js":
            return Response(
                plotly,
                media_type="text/javascript; charset=utf-8",
                headers={"cache-control": "max-age=86400"},
            )
        media = STATIC.get(name)
        if media is None:  # only the named files: no path is ever looked up
            return json_response({"error": "not found"}, 404)
        return Response(page[name], media_type=media, headers={"cache-control": "no-cache"})

    def q(request: Request) -> dict[str, str]:
        return dict(request.query_params)

    async def no_icon(request: Request) -> Response:
        return Response(status_code=204)

    routes = [
        Route("/", index, methods=["GET"]),
        Route("/favicon.ico", no_icon, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/api/sources", answer(lambda r: explorer.sources()), methods=["GET"]),
        Route(
            "/api/tables/{tid}/list",
            answer(lambda r: explorer.table(r.path_params["tid"]).listing(q(r))),
            methods=["GET"],
        ),
        Route(
            "/api/tables/{tid}/names",
            answer(lambda r: explorer.table(r.path_params["tid"]).names()),
            methods=["GET"],
        ),
        Route(
            "/api/tables/{tid}/scatter",
            answer(lambda r: explorer.table(r.path_params["tid"]).scatter(q(r))),
            methods=["GET"],
        ),
        Route(
            "/api/tables/{tid}/arch",
            answer(
                lambda r: explorer.table(r.path_params["tid"]).arch(
                    r.query_params.get("a", ""), q(r)
                )
            ),
            methods=["GET"],
        ),
        Route(
            "/api/runs/{rid}",
            answer(lambda r: explorer.run(r.path_params["rid"])),
            methods=["GET"],
        ),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return json_response({"error": "not found"}, 404)

    async def not_allowed(request: Request, exc: Exception) -> Response:
        return json_response({"error": "read-only: only GET is served"}, 405)

    class SecurityHeaders:
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await self.app(scope, receive, send)
                return

            async def send_with_headers(message: Any) -> None:
                if message["type"] == "http.response.start":
                    message.setdefault("headers", [])
                    message["headers"] = list(message["headers"]) + SECURITY_HEADERS
                await send(message)

            await self.app(scope, receive, send_with_headers)

    hosts = set(allowed_hosts or LOOPBACK_NAMES)

    class HostCheck:
        """Refuse (400) a ``Host`` header naming another machine: a page elsewhere whose
        name resolves to 127.0.0.1 (DNS rebinding) must not read the answers. Unlike
        Starlette's TrustedHostMiddleware, reads bracketed IPv6 hosts (``[::1]:8000``)."""

        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "http" and "*" not in hosts:
                raw = dict(scope["headers"]).get(b"host", b"").decode("latin-1")
                name = raw[: raw.find("]") + 1] if raw.startswith("[") else raw.split(":")[0]
                if name not in hosts:
                    await json_response({"error": f"host {name[:60]!r} refused"}, 400)(
                        scope, receive, send
                    )
                    return
            await self.app(scope, receive, send)

    return Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders), Middleware(HostCheck)],
        exception_handlers={404: not_found, 405: not_allowed},
    )


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on (host, port); port 0 picks a free one. A busy port or an
    unknown host is an :class:`ExploreError`."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ExploreError(f"--host {host!r} cannot be resolved ({exc})") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise ExploreError(
            f"cannot listen on {host}:{port} ({exc.strerror}); try --port 0"
        ) from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class ServerThread:
    """A uvicorn server on a bound socket in a background thread (tests, benchmarks):
    ``url`` once started; :meth:`stop` shuts it down."""

    def __init__(self, app: Any, sock: socket.socket) -> None:
        import uvicorn

        self.sock = sock
        self.url = url_of(sock)
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [sock]}, daemon=True
        )

    def start(self, timeout: float = 10.0) -> ServerThread:
        self.thread.start()
        t0 = time.monotonic()
        while not self.server.started:
            if time.monotonic() - t0 > timeout or not self.thread.is_alive():
                raise ExploreError(f"the explore server did not start within {timeout} s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


def serve(
    explorer: Explorer,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[str], None] = print,
) -> None:
    """Serve until interrupted. A non-loopback ``host`` answers any ``Host`` header (the
    caller warns that the page is then reachable from the network)."""
    import uvicorn

    sock = bind(host, port)
    hosts = None if is_loopback(host) else ["*"]
    app = create_app(explorer, allowed_hosts=hosts)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    on_ready(url_of(sock))
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


__all__ = ["ServerThread", "bind", "create_app", "is_loopback", "serve", "url_of"]
