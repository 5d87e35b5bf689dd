import sys

from rsgui.cli import main

sys.exit(main())
