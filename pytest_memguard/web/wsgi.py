"""``WSGIMemoryMonitorMiddleware``: the memory of each request of a WSGI (PEP 3333) app."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, final

from .recorder import RequestRecord, RequestRecorder

if TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

__all__ = ["WSGIMemoryMonitorMiddleware"]

logger = logging.getLogger(__name__)


@final
class WSGIMemoryMonitorMiddleware:
    """Measures RSS around each request of ``wsgi_app``; the keywords of the ASGI one.

    A request ends when its body has been iterated to the end or closed, whichever comes
    first.  ``on_alert`` must be a plain function here (an awaitable it returns is closed
    and logged).  Under a threaded server, requests overlap as under ASGI: RSS is per
    process, and ``overlapped`` in a record says how many requests ran beside it.
    Thread-safe.  Call :meth:`stop` at shutdown to join the sampler thread.
    """

    def __init__(
        self,
        wsgi_app: WSGIApplication,
        *,
        headers: bool = True,
        alert_threshold: int | str | None = "20 MB",
        on_alert: Callable[[RequestRecord], object] | None = None,
        keep: int = 50,
        max_routes: int = 256,
        sample_interval: float | None = 0.005,
        rss: Callable[[], int] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = wsgi_app
        self.recorder = RequestRecorder(
            headers=headers,
            alert_threshold=alert_threshold,
            on_alert=on_alert,
            keep=keep,
            max_routes=max_routes,
            sample_interval=sample_interval,
            rss=rss,
            clock=clock,
        )

    def stats(self) -> dict[str, Any]:
        """Per-route statistics and the heaviest requests (see :meth:`RequestRecorder.stats`)."""
        return self.recorder.stats()

    def stop(self) -> None:
        """Join the sampler thread and release the RSS reader (reopened on the next request)."""
        self.recorder.stop()

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
