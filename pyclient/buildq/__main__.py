"""Allow `python -m buildq`."""

import sys

from buildq.cli import main

sys.exit(main())
