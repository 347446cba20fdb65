import sys

from thagen.cli import main

sys.exit(main())
