"""A real server for the page's tests: `python -m sweeper serve`'s application, served by uvicorn in a
thread on a free port of 127.0.0.1, and asked over HTTP as a browser asks it."""
from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import uvicorn

from sweeper.serve.app import listen, make_app, new_token
from sweeper.sweep.jobs import sweeps_in


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode()


@dataclass
class Server:
    url: str            # http://127.0.0.1:PORT
    token: str

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def get(self, route: str, /, *, token: bool | str = True, cookie: str | None = None, method: str = "GET",
            **params: str) -> Answer:
        """Ask `route` with `params` and the token (none: token=False; another: token="..."), with a
        Cookie header where one is given."""
        given = self.token if token is True else token or None
        query = {**params, **({"token": given} if given else {})}
        request = urllib.request.Request(f"{self.url}{route}?{urllib.parse.urlencode(query)}", method=method,
                                         headers={"Cookie": cookie} if cookie else {})
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=30) as response:
                return Answer(response.status, dict(response.headers), response.read())
        except urllib.error.HTTPError as e:
            return Answer(e.code, dict(e.headers), e.read())


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the redirect is what some tests look at
        return None


@contextlib.contextmanager
def serving(root: Path, refresh_s: float | None = None) -> Iterator[Server]:
    """The page of the sweep (or folder of sweeps) root, served until the block ends."""
    token = new_token()
    sock = listen("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(make_app(root, sweeps_in(root), token, refresh_s), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield Server(f"http://127.0.0.1:{sock.getsockname()[1]}", token)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
