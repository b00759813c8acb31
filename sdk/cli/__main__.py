"""``python -m sdk.cli``."""
import sys

from sdk.cli import main

sys.exit(main())
