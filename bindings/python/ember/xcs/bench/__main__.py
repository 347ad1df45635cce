"""python -m ember.xcs.bench — the same as the xcs-bench command."""
import sys

from ember.xcs.bench.cli import main

sys.exit(main())
