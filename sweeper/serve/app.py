"""The sweep's page as a web application (Starlette, served by uvicorn): read-only, behind a token.

A login node is shared: the server listens on 127.0.0.1 unless told otherwise, and answers only a
request that brings its random token, in the URL (`?token=...`, as Jupyter does) or in the cookie
the first such request sets. Every route is GET; a file is served only from under DIR.
"""
from __future__ import annotations

import contextlib
import secrets
import socket
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from sweeper.errors import BadInput
from sweeper.serve.live import PAGE_SIZE, BadQuery, Figures, Live, inside, job_detail, table_page

STATIC = Path(__file__).parent / "static"
DEFAULT_PORTS = range(8765, 8785)   # the first free one, where no --port is given
# Defence in depth behind the page's own escaping: no inline script, nothing from elsewhere.
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; object-src 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
FORBIDDEN = "forbidden: open the URL that `python -m sweeper serve` printed (it holds the token)"


def new_token() -> str:
    return secrets.token_urlsafe(24)


class TokenGate(BaseHTTPMiddleware):
    """Only a request with the token (in the URL, or in the cookie that sets) gets an answer."""

    def __init__(self, app: Any, token: str) -> None:
        super().__init__(app)
        self.token = token.encode()

    def _matches(self, given: str | None) -> bool:
        return given is not None and secrets.compare_digest(given.encode(), self.token)

    async def dispatch(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        cookie = f"sweeper-token-{request.url.port or 80}"   # cookies are per host: one per server
        given = request.query_params.get("token")
        if self._matches(given):
            # the page itself: the token leaves the address bar (and any copy of it), the cookie keeps it
            redirect = request.method == "GET" and request.url.path == "/"
            response = RedirectResponse("/", 303) if redirect else await call_next(request)
            response.set_cookie(cookie, self.token.decode(), httponly=True, samesite="strict")
        elif self._matches(request.cookies.get(cookie)):
            response = await call_next(request)
        else:
            response = PlainTextResponse(FORBIDDEN, 403)
        response.headers.update(HEADERS)
        return response


def _query(request: Request) -> dict[str, Any]:
    params = request.query_params
    try:
        page, size = int(params.get("page", 0)), int(params.get("size", PAGE_SIZE))
    except ValueError:
        raise BadQuery("page and size are whole numbers") from None
    return {"sort": params.get("sort") or None, "descending": params.get("desc") == "1",
            "statuses": [s for s in params.get("status", "").split(",") if s], "where": params.get("where", ""),
            "page": page, "size": size}


def make_app(root: Path, within: list[Path], token: str, refresh_s: float | None = None) -> Starlette:
    """The application over the sweep (or folder of sweeps) root, whose sweeps are `within`."""
    root = Path(root)
    live = Live(root, within) if refresh_s is None else Live(root, within, refresh_s)
    figures = Figures()

    def index(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    def overview(request: Request) -> Response:
        return JSONResponse(live.snapshot().overview)

    def jobs(request: Request) -> Response:
        try:
            return JSONResponse(table_page(live.snapshot().table, **_query(request)))
        except BadQuery as e:
            return JSONResponse({"error": str(e)}, 400)

    def job(request: Request) -> Response:
        detail = job_detail(root, live.snapshot(), request.query_params.get("name", ""))
        return JSONResponse(detail) if detail else JSONResponse({"error": "no such job"}, 404)

    def sweep_figures(request: Request) -> Response:
        return JSONResponse({"figures": figures.of_sweep(live.snapshot())})

    def job_figures(request: Request) -> Response:
        snapshot, name = live.snapshot(), request.query_params.get("name", "")
        if name not in snapshot.jobs:
            return JSONResponse({"error": "no such job"}, 404)
        return JSONResponse({"figures": figures.of_job(snapshot, name)})

    def figure(request: Request) -> Response:
        path = figures.path(request.path_params["name"])
        return FileResponse(path, media_type="image/png") if path else PlainTextResponse("no such figure", 404)

    def file(request: Request) -> Response:
        path = inside(root, request.query_params.get("path", ""))
        if path is None:
            return PlainTextResponse("refused: not a file under the sweep's directory", 403)
        return FileResponse(path, media_type="text/plain; charset=utf-8")  # streamed: a log may be large

    def route(path: str, endpoint: Callable[[Request], Response]) -> Route:
        # plain functions: Starlette runs them in its thread pool, off the event loop (they read and draw)
        return Route(path, endpoint, methods=["GET"])

    routes = [route("/", index), route("/api/sweep", overview), route("/api/jobs", jobs), route("/api/job", job),
              route("/api/figures", sweep_figures), route("/api/job-figures", job_figures),
              route("/figures/{name:path}", figure), route("/file", file),
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        live.start()
        yield
        figures.close()
        live.close()

    return Starlette(routes=routes, middleware=[Middleware(TokenGate, token=token)], lifespan=lifespan)


class PortTaken(BadInput):
    """No port to listen on; the message is one line naming what to do."""


def listen(host: str, port: int | None) -> socket.socket:
    """A socket listening on host:port (an IPv4 or IPv6 address, or a name), or on the first free
    port of DEFAULT_PORTS."""
    if port is not None and not 0 <= port <= 65535:
        raise PortTaken(f"--port {port} is no port: give one of 1-65535 (or 0: any free one)")
    family = _family(host)
    last = OSError("no port tried")
    for candidate in [port] if port is not None else DEFAULT_PORTS:
        try:
            return socket.create_server((host, candidate), family=family)
        except OSError as e:
            last = e
    ports = str(port) if port is not None else f"{DEFAULT_PORTS[0]}-{DEFAULT_PORTS[-1]}"
    raise PortTaken(f"cannot listen on {host} port {ports} ({last.strerror}): give another with --port")


def _family(host: str) -> socket.AddressFamily:
    """IPv4 or IPv6, as the address (or name) `host` is."""
    try:
        return socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)[0][0]
    except (socket.gaierror, UnicodeError) as e:
        reason = e.strerror if isinstance(e, socket.gaierror) else "not a host name"
        raise PortTaken(f"cannot listen on {host} ({reason}): give an address of this machine with --host, "
                        "such as 127.0.0.1 or ::1") from None


def serve(app: Starlette, sock: socket.socket) -> None:
    """Answer requests until Ctrl-C."""
    try:
        uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on")).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn stops first, then hands Ctrl-C on: the end asked for, no traceback
        pass
