"""``python -m midilm`` (also what torchrun runs with ``-m midilm``)."""

import sys

from midilm.cli import main

sys.exit(main())
