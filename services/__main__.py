"""`python -m services`: the `everydoor` command."""

import sys

from services.cli import main

sys.exit(main())
