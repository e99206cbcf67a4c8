"""``python -m ganzoo.cli`` runs the command line, as ``python -m ganzoo`` does."""

import sys

from ganzoo.cli import main

sys.exit(main())
