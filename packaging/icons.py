"""Make the Windows .ico and macOS .icns from the one source image, resources/icons/autogpt-gui.png.

Both formats can hold PNG data directly, so all this does is scale the image (with Qt) and
write the containers' small headers.
"""
from __future__ import annotations

import struct
from pathlib import Path

ICO_SIZES = (16, 32, 48, 64, 128, 256)
ICNS_TYPES = {16: b"icp4", 32: b"icp5", 64: b"icp6", 128: b"ic07", 256: b"ic08", 512: b"ic09"}


def _png_bytes(source: Path, size: int) -> bytes:
    from PySide6.QtCore import QBuffer, QByteArray, QIODevice, Qt
    from PySide6.QtGui import QImage

    image = QImage(str(source)).scaled(size, size, Qt.KeepAspectRatio, Qt.SmoothTransformation)
    data = QByteArray()
    buf = QBuffer(data)
    buf.open(QIODevice.WriteOnly)
    image.save(buf, "PNG")
    return bytes(data)


def make_ico(source: Path, out: Path) -> Path:
    images = [_png_bytes(source, s) for s in ICO_SIZES]
    header = struct.pack("<HHH", 0, 1, len(images))
    offset = 6 + 16 * len(images)
    entries, blobs = b"", b""
    for size, png in zip(ICO_SIZES, images):
        dim = 0 if size >= 256 else size  # 0 means 256 in an ICO directory entry
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset + len(blobs))
        blobs += png
    out.write_bytes(header + entries + blobs)
    return out


def make_icns(source: Path, out: Path) -> Path:
    body = b""
    for size, kind in ICNS_TYPES.items():
        png = _png_bytes(source, size)
        body += kind + struct.pack(">I", len(png) + 8) + png
    out.write_bytes(b"icns" + struct.pack(">I", len(body) + 8) + body)
    return out


def make_icons(source: Path, out_dir: Path) -> tuple[Path, Path]:
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # a build machine needs no display
    from PySide6.QtGui import QGuiApplication

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841 - QImage scaling wants an app
    out_dir.mkdir(parents=True, exist_ok=True)
    return make_ico(source, out_dir / "autogpt-gui.ico"), make_icns(source, out_dir / "autogpt-gui.icns")
