"""StopSignals: SIGTERM and SIGHUP unwind as Ctrl-C does, and every signal is remembered."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from pytest_memguard.core.stopsignals import StopSignals, Terminated, signal_name

posix_only = pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals")


@pytest.fixture
def signals() -> Iterator[StopSignals]:
    taken = StopSignals()
    previous = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    taken.install()
    yield taken
    taken.restore()
    for number, handler in previous.items():
        signal.signal(number, handler)


@posix_only
def test_sigterm_raises_terminated_once_and_says_the_exit_status(signals: StopSignals) -> None:
    with pytest.raises(Terminated, match="SIGTERM received") as raised:
        os.kill(os.getpid(), signal.SIGTERM)
    assert isinstance(raised.value, KeyboardInterrupt)
    assert not isinstance(raised.value, Exception)
    os.kill(os.getpid(), signal.SIGTERM)  # the second is remembered, not raised
    assert signals.received == [signal.SIGTERM, signal.SIGTERM]
    assert signals.exit_status() == 128 + signal.SIGTERM


@posix_only
def test_ctrl_c_keeps_pythons_behaviour_and_pytests_exit_status(signals: StopSignals) -> None:
    for _ in range(2):
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signals.first == signal.SIGINT
    assert signals.exit_status() is None


@posix_only
def test_while_holding_a_signal_is_only_remembered_and_passed_on(signals: StopSignals) -> None:
    heard: list[int] = []
    signals.on_signal = heard.append
    signals.holding = True
    os.kill(os.getpid(), signal.SIGINT)
    os.kill(os.getpid(), signal.SIGTERM)
    assert heard == signals.received == [signal.SIGINT, signal.SIGTERM]
    assert signals.exit_status() == 128 + signal.SIGTERM


@posix_only
def test_a_signal_someone_else_handles_or_ignores_is_left_to_them() -> None:
    def theirs(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGTERM, theirs)
    hup = signal.signal(signal.SIGHUP, signal.SIG_IGN)  # nohup
    try:
        taken = StopSignals().install()
        assert signal.getsignal(signal.SIGTERM) is theirs
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
        taken.restore()
    finally:
        signal.signal(signal.SIGTERM, previous)
        signal.signal(signal.SIGHUP, hup)


@posix_only
def test_restore_puts_back_the_default_handlers(signals: StopSignals) -> None:
    signals.restore()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_signal_names() -> None:
    assert signal_name(signal.SIGINT) == "SIGINT"
    assert signal_name(999) == "signal 999"


@posix_only
def test_a_forked_child_gets_the_handlers_from_before(signals: StopSignals) -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report whether SIGTERM is at its default again
        os.write(write, b"1" if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL else b"0")
        os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL  # the parent keeps them
