import sys

from outpaint.cli import main

sys.exit(main())
