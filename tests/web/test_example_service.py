"""``examples/service.py`` imports and answers under uvicorn (a subprocess)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .helpers import Server, example_service


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with example_service(tmp_path_factory.mktemp("service")) as served:
        yield served


def test_the_example_service_answers_and_measures(service: Server) -> None:
    for _ in range(2):  # computed, then from the cache
        reply = service.get("/primes/50000")
        assert reply.status == 200
        assert reply.json() == {"n": 50000, "count": 5133, "largest": [49999]}
        assert int(reply.headers["x-memory-rss"]) > 0
    assert service.get("/memory/cache/metrics").json()["primes"]["hits"] == 1
    assert service.get("/memory/requests").json()["routes"]["/primes/50000"]["count"] == 2
    assert service.post("/memory/cleanup").status == 200


@pytest.mark.parametrize(
    "path",
    [
        "/primes/%C2%B2",  # superscript two: str.isdigit() says yes, int() says no
        "/primes/%D9%A3",  # Arabic-Indic three: int() takes it, the route does not
        "/primes/1_000",
        "/primes/-5",
        "/primes/1000001",
        "/primes/" + "9" * 5000,  # past int()'s digit limit
        "/primes/",
    ],
)
def test_a_bad_number_is_a_404_with_a_short_json_body(service: Server, path: str) -> None:
    reply = service.get(path)
    assert reply.status == 404
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"].startswith("no route /primes/")
    assert len(reply.body) < 200 + len(path)
    assert b"Traceback" not in service.log.read_bytes()
