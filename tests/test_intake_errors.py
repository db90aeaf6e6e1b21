"""The group committer's refusals reach API clients as 503 in the error format, with Retry-After when it helps."""

from __future__ import annotations

from quai.api import _quai_error
from quai.core.batching import CommitFailed, Overloaded


def test_an_overloaded_intake_answers_503_with_retry_after(rf):
    response = _quai_error(rf.post("/api/v1/orders"), Overloaded("busy", retry_after=2))
    assert response.status_code == 503
    assert response["Retry-After"] == "2"


def test_a_failed_shared_commit_answers_503_commit_failed(rf):
    response = _quai_error(rf.post("/api/v1/orders"), CommitFailed("not written"))
    assert response.status_code == 503
    assert b"commit_failed" in response.content
