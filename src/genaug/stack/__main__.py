import sys

from genaug.stack.cli import main

sys.exit(main())
