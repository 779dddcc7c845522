"""The built book served over HTTP on a free local port, as a reader's browser would load it,
for the browser tests (a page opened from file:// would not load its scripts' modules alike)."""
from __future__ import annotations

import contextlib
import functools
import http.server
import threading
from pathlib import Path
from typing import Callable, Iterator


@contextlib.contextmanager
def serve_folder(folder: Path, on_request: Callable[[str, int], None] | None = None) -> Iterator[str]:
    """``with serve_folder(html) as url: ...``: serve ``folder`` at ``url`` (ends in ``/``) until the
    block ends, without logging; ``on_request(path, status)`` hears of every request answered."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def log_request(self, code="-", size="-"):
            if on_request is not None:
                on_request(self.path, int(code) if str(code).isdigit() else 0)

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                            functools.partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()
