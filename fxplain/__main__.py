"""``python -m fxplain``: the same as the ``fxplain`` command."""

import sys

from .cli import main

sys.exit(main())
