"""The soak's own verdicts (bench/soak.py), on made-up samples: a check that cannot fail proves nothing."""

from __future__ import annotations

from bench.soak import Sample, check_http


def sample(status: int, at: float, seconds: float, code: str = "") -> Sample:
    return Sample("bid", status, seconds, 8001, at, code)


def test_a_request_in_flight_when_its_web_process_was_killed_is_expected_to_fail() -> None:
    down = {8001: [[100.0, 108.0]]}  # killed at 100 s, serving again at 108 s
    # Sent 5 s before the kill and cut by it: expected. Failing 30 s after the restart: not.
    assert check_http([sample(-1, 95.0, 5.0)], down)["ok"]
    late = check_http([sample(-1, 140.0, 0.1)], down)
    assert not late["ok"] and late["connection_errors_outside_fault_windows"] == 1


def test_any_5xx_or_busy_retry_fails_the_run() -> None:
    assert not check_http([sample(500, 10.0, 0.1)], {})["ok"]
    assert not check_http([sample(503, 10.0, 0.1, "busy_retry")], {})["ok"]
    assert check_http([sample(200, 10.0, 0.1), sample(409, 11.0, 0.1)], {})["ok"]
