"""Progress output: plain lines where a script or a CI log reads them, a live bar on a terminal."""

from __future__ import annotations

import io

import pytest

from registry.tools import progress
from registry.tools.progress import Progress, human_bytes


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_without_a_terminal_only_notes_and_the_summary_are_written(capsys: pytest.CaptureFixture[str]) -> None:
    log = io.StringIO()
    run = Progress("verify", total_items=3, stream=log)
    run.add(items=1, nbytes=2048)
    run.note("repaired: blob a: truncated")
    run.fail("team/app:v1", "manifest unknown")
    run.add(items=2)
    assert run.finish("verified 3 blobs") == 1
    assert log.getvalue() == "repaired: blob a: truncated\n"
    out, err = capsys.readouterr()
    assert out == "verified 3 blobs; 1 failed\n"
    assert err == "  failed: team/app:v1: manifest unknown\n"
    assert (run.items, run.bytes, run.failures) == (3, 2048, ["team/app:v1: manifest unknown"])


def test_a_clean_run_exits_zero_with_the_bare_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert Progress("gc", stream=io.StringIO()).finish("gc freed 0 B") == 0
    assert capsys.readouterr() == ("gc freed 0 B\n", "")


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> Terminal:
    monkeypatch.setattr(progress, "REFRESH", 0)  # draw on every update, so what is drawn is known
    return Terminal()


def test_a_terminal_gets_a_bar_with_counts_bytes_and_rate(terminal: Terminal,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = Progress("export", total_items=4, stream=terminal)
    run.add(items=1, nbytes=1500)
    run.add(items=1)
    drawn = terminal.getvalue()
    assert "export" in drawn and "2/4" in drawn and "1.5 KB" in drawn and "items/s" in drawn
    run.fail("team/app:v1", "manifest unknown")
    assert "error: team/app:v1: manifest unknown\n" in terminal.getvalue()
    assert run.finish("exported 1 images") == 1
    assert capsys.readouterr().out == "exported 1 images; 1 failed\n"


def test_the_bar_follows_counters_set_by_the_caller(terminal: Terminal) -> None:
    run = Progress("export", total_items=2, stream=terminal)
    run.add(items=2)
    run.items, run.total_items = 0, 7  # second phase: the blobs
    run.add(items=1)
    assert "1/7" in terminal.getvalue()
    run.finish("done")


def test_notes_on_a_terminal_are_whole_lines(terminal: Terminal) -> None:
    run = Progress("verify", stream=terminal)
    run.add(nbytes=10)
    run.note("repaired: x: y")
    assert "repaired: x: y\n" in terminal.getvalue()
    run.finish("done")


@pytest.mark.parametrize("count, shown", [(0, "0 B"), (999, "999 B"), (1000, "1.0 KB"), (1_500_000, "1.5 MB"),
                                          (2 * 10**15, "2000.0 TB")])
def test_human_bytes(count: int, shown: str) -> None:
    assert human_bytes(count) == shown
