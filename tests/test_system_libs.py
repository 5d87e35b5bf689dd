"""Detection of the system libraries Qt's xcb plugin needs, from a fake ``ldd`` output."""

from __future__ import annotations

import pytest

from rsgui.app import system_libs

LDD = """\
\tlinux-vdso.so.1 (0x00007ffd)
\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f03)
\tlibxcb-cursor.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibxcb-util.so.1 => /lib/x86_64-linux-gnu/libxcb-util.so.1 (0x00007f03)
\tlibxcb-keysyms.so.1 => not found
\tlibxkbcommon-x11.so.0 => not found
\tlibxcb-icccm.so.4 => not found
\tlibX11-xcb.so.1 => not found
"""


def test_missing_libraries_are_listed_once_in_order():
    assert system_libs.missing_libraries(LDD) == [
        "libxcb-cursor.so.0",
        "libxcb-icccm.so.4",
        "libxcb-keysyms.so.1",
        "libxkbcommon-x11.so.0",
        "libX11-xcb.so.1",
    ]


def test_nothing_missing():
    assert system_libs.missing_libraries("\tlibxcb.so.1 => /lib/libxcb.so.1 (0x1)\n") == []


@pytest.mark.parametrize(
    ("soname", "package"),
    [
        ("libxcb-cursor.so.0", "libxcb-cursor0"),
        ("libxcb-icccm.so.4", "libxcb-icccm4"),
        ("libxcb-keysyms.so.1", "libxcb-keysyms1"),
        ("libxcb-image.so.0", "libxcb-image0"),
        ("libxcb-render-util.so.0", "libxcb-render-util0"),
        ("libxkbcommon-x11.so.0", "libxkbcommon-x11-0"),
        ("libxcb-shape.so.0", "libxcb-shape0"),
        ("libX11-xcb.so.1", "libx11-xcb1"),
        ("libEGL.so.1", "libegl1"),
    ],
)
def test_debian_package_names(soname, package):
    assert system_libs.package_for(soname) == package


def test_report_names_one_install_line(monkeypatch, tmp_path, capsys):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    monkeypatch.setattr(system_libs, "plugin_path", lambda: plugin)
    monkeypatch.setattr(system_libs, "run_ldd", lambda path: LDD)
    assert system_libs.main([]) == 1
    err = capsys.readouterr().err
    assert (
        "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 "
        "libxkbcommon-x11-0 libx11-xcb1" in err
    )


def test_report_is_silent_when_complete(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(system_libs, "plugin_path", lambda: tmp_path / "libqxcb.so")
    monkeypatch.setattr(system_libs, "run_ldd", lambda path: "\tlibc.so.6 => /lib/libc.so.6\n")
    assert system_libs.main([]) == 0
    assert capsys.readouterr().err == ""
