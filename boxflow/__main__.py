import sys

from boxflow.cli import main

sys.exit(main())
