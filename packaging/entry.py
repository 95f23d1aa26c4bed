"""The frozen app's entry point: the same command line as `autogpt-gui` from source."""
import multiprocessing
import sys

from autogpt_gui.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())
