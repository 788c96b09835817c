import sys

from clientside.cli import main

sys.exit(main())
