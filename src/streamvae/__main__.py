"""``python -m streamvae``: the same command line as ``streamvae``."""
import sys

from .cli import main

sys.exit(main())
