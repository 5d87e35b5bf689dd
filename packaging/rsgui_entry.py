"""Entry point of the bundled application: PyInstaller runs this file as ``__main__``.

The same ``main()`` as the ``rsgui`` command of a source install, so ``dist/rsgui/rsgui
--self-test`` checks exactly what a user launches.
"""

import multiprocessing
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a child process of a frozen app must not re-run the GUI
    from rsgui.app.main import main

    sys.exit(main())
