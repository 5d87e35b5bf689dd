"""Reading ahead keeps order, raises errors where they happened, and stops when closed."""

from __future__ import annotations

import threading
import time

import pytest

from rsgui.prefetch import prefetched


@pytest.mark.parametrize("depth", [1, 2, 4])
def test_order_and_values(depth):
    assert list(prefetched(lambda x: x * x, range(20), depth)) == [x * x for x in range(20)]


def test_reads_run_in_another_thread_ahead_of_the_consumer():
    seen = []
    out = prefetched(lambda x: seen.append(threading.current_thread().name) or x, range(4))
    assert next(out) == 0
    time.sleep(0.2)
    assert len(seen) >= 2 and all(n == "rsgui-prefetch" for n in seen)
    out.close()


def test_an_error_comes_where_its_batch_would_have():
    def fn(x):
        if x == 3:
            raise ValueError("tile 3 is bad")
        return x

    got = []
    with pytest.raises(ValueError, match="tile 3"):
        for v in prefetched(fn, range(6)):
            got.append(v)
    assert got == [0, 1, 2]


def test_closing_stops_the_reader():
    calls = []
    out = prefetched(lambda x: calls.append(x) or x, range(1000), depth=2)
    next(out)
    out.close()
    n = len(calls)
    time.sleep(0.2)
    assert len(calls) == n and n < 10
    assert not [t for t in threading.enumerate() if t.name == "rsgui-prefetch"]


def test_off_switch(monkeypatch):
    monkeypatch.setenv("RSGUI_PREFETCH", "0")
    names = []
    list(prefetched(lambda x: names.append(threading.current_thread().name), range(3)))
    assert "rsgui-prefetch" not in names
