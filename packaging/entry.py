"""The frozen app's entry point: the same command line as `autogpt-gui` from source."""
import multiprocessing

from autogpt_gui.cli import run

if __name__ == "__main__":
    multiprocessing.freeze_support()
    run()
