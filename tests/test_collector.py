"""The cycle collector paused during a large job's work (webapp.collector) comes back after it, even
when the work fails, and stays off when it was off."""

from __future__ import annotations

import gc

import pytest

from webapp import collector


def test_the_collector_is_paused_during_the_work_and_back_after_it_even_after_a_failure():
    assert gc.isenabled()
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector.paused():
        assert not gc.isenabled()
        raise RuntimeError("le logiciel a refusé")
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off():
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_transfer_runs_with_the_collector_paused(monkeypatch):
    from webapp.services import transfer

    seen = []
    monkeypatch.setattr(transfer, "_transfer", lambda *args: seen.append(gc.isenabled()) or {"whole": []})
    assert transfer.transfer(1) == {"whole": []}
    assert seen == [False] and gc.isenabled()
