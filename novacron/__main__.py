"""``python -m novacron`` is the ``novacron`` command."""

import sys

from novacron.app.cli import main

sys.exit(main())
