"""Guards against a broken Qt binding: PySide6 6.12.0 lost a reference to True on every Signal.emit()."""
import sys

from PySide6.QtCore import QObject, Signal


class _Emitter(QObject):
    ping = Signal(str)


def test_signal_emit_keeps_reference_counts(qapp):
    e = _Emitter()
    e.ping.connect(lambda s: None)
    before = sys.getrefcount(True)
    for _ in range(1000):
        e.ping.emit("x")
    assert abs(sys.getrefcount(True) - before) < 10
