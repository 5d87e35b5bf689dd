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


def _fake_plugin(monkeypatch, tmp_path, ldd_output):
    plugin = tmp_path / "libqxcb.so"
    plugin.write_bytes(b"")
    calls = []

    def ldd(path):
        calls.append(path)
        return ldd_output

    monkeypatch.setattr(system_libs, "plugin_path", lambda: plugin)
    monkeypatch.setattr(system_libs, "run_ldd", ldd)
    monkeypatch.setattr(system_libs, "LD_CACHE", tmp_path / "ld.so.cache")
    return plugin, calls


def test_complete_check_is_remembered_until_the_libraries_change(monkeypatch, tmp_path):
    _, calls = _fake_plugin(monkeypatch, tmp_path, "\tlibc.so.6 => /lib/libc.so.6\n")
    cache = tmp_path / "cache"
    assert system_libs.missing_packages_cached(cache) == []
    assert system_libs.missing_packages_cached(cache) == [] and len(calls) == 1  # no ldd again
    (tmp_path / "ld.so.cache").write_bytes(b"changed")  # ldconfig ran: a package came or went
    monkeypatch.setattr(system_libs, "run_ldd", lambda path: LDD)
    assert system_libs.missing_packages_cached(cache)[:2] == ["libxcb-cursor0", "libxcb-icccm4"]


def test_missing_result_is_never_remembered(monkeypatch, tmp_path):
    _, calls = _fake_plugin(monkeypatch, tmp_path, LDD)
    cache = tmp_path / "cache"
    assert system_libs.missing_packages_cached(cache)
    assert system_libs.missing_packages_cached(cache) and len(calls) == 2


@pytest.mark.parametrize(
    ("env", "expected"),
    [({"DISPLAY": ":0"}, True), ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "xcb"}, True),
     ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "offscreen"}, False), ({}, False),
     ({"DISPLAY": ":0", "QT_QPA_PLATFORM": "wayland"}, False)],
)  # fmt: skip
def test_uses_xcb(env, expected):
    assert system_libs.uses_xcb(env) is expected


def test_rsgui_exits_with_the_install_line_instead_of_aborting(monkeypatch, tmp_path, capsys):
    from rsgui.app import main as app_main

    _fake_plugin(monkeypatch, tmp_path, LDD)
    monkeypatch.setenv("RSGUI_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    assert app_main.main([]) == 1
    err = capsys.readouterr().err
    assert "sudo apt-get install -y libxcb-cursor0 libxcb-icccm4" in err
