"""``python -m rcmlrouter``: the command line."""

import sys

from rcmlrouter.cli import main

sys.exit(main())
