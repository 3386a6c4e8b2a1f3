import sys

from aionix.server import main

sys.exit(main())
