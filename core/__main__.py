"""``python -m core MODEL ...`` is ``keras2metal MODEL ...``."""
import sys

from core.cli import main

sys.exit(main())
