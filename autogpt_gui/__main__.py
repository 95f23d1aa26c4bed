import sys

from autogpt_gui.cli import main

sys.exit(main())
