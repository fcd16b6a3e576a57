import sys

from xbar.cli import main

sys.exit(main())
