from aionix.api.limits import FailureCounter, TokenBuckets


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_token_bucket_allows_burst_then_the_configured_rate():
    clock = Clock()
    buckets = TokenBuckets(rate=10, burst=5, clock=clock)
    assert [buckets.take("k") for _ in range(5)] == [0.0] * 5
    wait = buckets.take("k")
    assert 0.09 < wait <= 0.1
    allowed = 0
    for _ in range(1000):  # 10 simulated seconds in 10 ms steps
        clock.t += 0.01
        allowed += buckets.take("k") == 0.0
    assert 90 <= allowed <= 110  # within ±10% of 10/s


def test_buckets_are_per_key():
    buckets = TokenBuckets(rate=1, burst=1, clock=Clock())
    assert buckets.take("a") == 0.0
    assert buckets.take("b") == 0.0
    assert buckets.take("a") > 0


def test_failure_counter_blocks_after_the_limit_for_the_window():
    clock = Clock()
    counter = FailureCounter(limit=3, window=60, clock=clock)
    for _ in range(3):
        assert counter.blocked("ip") == 0
        counter.record("ip")
    assert counter.blocked("ip") == 60
    clock.t = 61
    assert counter.blocked("ip") == 0
