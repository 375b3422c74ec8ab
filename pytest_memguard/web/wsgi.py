"""``WSGIMemoryMonitorMiddleware``: the memory of each request of a WSGI (PEP 3333) app."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, final

from .recorder import Middleware

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["WSGIMemoryMonitorMiddleware"]

#: A WSGI application: ``app(environ, start_response) -> iterable of bytes``.
WSGIApp = Callable[[Any, Any], Iterable[bytes]]

logger = logging.getLogger(__name__)


@final
class WSGIMemoryMonitorMiddleware(Middleware[WSGIApp]):
    """Measures RSS around each request of ``wsgi_app``; the keywords of the ASGI one.

    A request ends when its body has been iterated to the end or closed, whichever comes
    first.  ``on_alert`` must be a plain function here (an awaitable it returns is closed
    and logged).  Under a threaded server, requests overlap as under ASGI: RSS is per
    process, and ``overlapped`` in a record says how many requests ran beside it.
    Thread-safe.  Call :meth:`stop` at shutdown to join the sampler thread.
    """

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        recorder = self.recorder
        path = f"{environ.get('SCRIPT_NAME', '')}{environ.get('PATH_INFO', '')}" or "/"
        window = recorder.begin(str(environ.get("REQUEST_METHOD", "GET")), path)
        status = [0]

        def start_measured(
            code: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None
        ) -> Callable[[bytes], object]:
            status[0] = int(code.split(" ", 1)[0])
            if recorder.headers:
                delta, rss = recorder.measure(window)
                headers = [*headers, ("X-Memory-Delta", str(delta)), ("X-Memory-RSS", str(rss))]
            return start_response(code, headers, exc_info)

        finished = False

        def finish() -> None:
            nonlocal finished
            if finished:
                return
            finished = True
            record = recorder.finish(window, status[0] or 500)
            outcome = recorder.alert(record)
            if inspect.isawaitable(outcome):
                if inspect.iscoroutine(outcome):
                    outcome.close()
                logger.error("memguard: on_alert returned an awaitable; WSGI needs a function")

        try:
            body = self.app(environ, start_measured)
        except BaseException:
            finish()
            raise
        return _Body(body, finish)


@final
class _Body:
    """The app's response body; calls ``finish`` once, when exhausted or closed."""

    __slots__ = ("_body", "_finish")

    def __init__(self, body: Iterable[bytes], finish: Callable[[], None]) -> None:
        self._body, self._finish = body, finish

    def __iter__(self) -> Iterator[bytes]:
        yield from self._body
        self._finish()

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            self._finish()
