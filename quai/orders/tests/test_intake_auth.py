"""A busy key's cache entry expiring: the threads serving its requests authenticate it once, not once each."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.test import RequestFactory

from quai.tenants import auth
from quai.tenants.key_cache import key_cache_forget_all

THREADS = 8


@pytest.fixture
def slow_key_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """``api_key_authenticate`` as a slow read that records each call (the throttle left out: no database)."""
    calls: list[str] = []

    def read(token: str) -> Any:
        calls.append(token)
        time.sleep(0.05)  # long enough for every thread to miss the cache meanwhile
        return SimpleNamespace(merchant_id=7, token=token)

    monkeypatch.setattr(auth, "api_key_authenticate", read)
    monkeypatch.setattr(auth, "auth_throttle_check", lambda **kwargs: None)
    key_cache_forget_all()
    yield calls
    key_cache_forget_all()


def _authenticate_at_once(tokens: list[str]) -> list[Any]:
    request = RequestFactory().post("/api/v1/orders")
    start = threading.Barrier(len(tokens))
    answers: list[Any] = [None] * len(tokens)

    def one(index: int) -> None:
        start.wait()
        answers[index] = auth.MerchantKeyAuth().authenticate(request, tokens[index])

    threads = [threading.Thread(target=one, args=(index,)) for index in range(len(tokens))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_threads_missing_one_key_at_once_read_it_once_and_share_it(slow_key_reads: list[str]) -> None:
    answers = _authenticate_at_once(["quai_abc_secret"] * THREADS)
    assert slow_key_reads == ["quai_abc_secret"]
    assert {id(answer.api_key) for answer in answers} == {id(answers[0].api_key)}
    assert all(answer.merchant_id == 7 for answer in answers)


def test_two_keys_missing_at_once_are_each_read_once(slow_key_reads: list[str]) -> None:
    _authenticate_at_once(["quai_one_secret", "quai_two_secret"] * (THREADS // 2))
    assert sorted(slow_key_reads) == ["quai_one_secret", "quai_two_secret"]


def test_with_the_cache_off_every_request_reads_its_key(slow_key_reads: list[str], settings: Any) -> None:
    settings.QUAI_API_KEY_CACHE_SECONDS = 0
    _authenticate_at_once(["quai_abc_secret"] * THREADS)
    assert len(slow_key_reads) == THREADS
