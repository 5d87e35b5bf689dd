"""PyInstaller hook for rasterio (pyinstaller-hooks-contrib has none for it).

rasterio's Cython modules import each other from C, which PyInstaller cannot see, so every
submodule is collected (the ``rio`` command line tools excepted: the app never runs them). The
wheels carry GDAL's and PROJ's data folders inside the package; rasterio finds them next to its
own files at ``rasterio/gdal_data`` and ``rasterio/proj_data`` (the bundle keeps that layout), and
without them no CRS can be read or transformed (EPSG codes live in PROJ's ``proj.db``). The
shared libraries (``rasterio.libs``) are found by PyInstaller's binary dependency analysis.
"""

from PyInstaller.utils.hooks import collect_data_files, collect_submodules

hiddenimports = collect_submodules(
    "rasterio", filter=lambda name: not name.startswith("rasterio.rio")
)
datas = collect_data_files("rasterio", subdir="gdal_data") + collect_data_files(
    "rasterio", subdir="proj_data"
)
