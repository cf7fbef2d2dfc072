"""``python -m bornc`` is the ``bornc`` command."""
import sys

from .cli import main

sys.exit(main())
