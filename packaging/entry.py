"""The frozen app's entry point: the same command line as `autogpt-gui` from source."""
import multiprocessing
import warnings

# PyInstaller keeps no .py sources, so torch's import-time check of each @torch.jit._overload body
# (inspect.getsource) warns once per function; nothing in the app scripts a model, and a user cannot act on it
warnings.filterwarnings("ignore", message=r"Unable to retrieve source for @torch\.jit\._overload function",
                        category=UserWarning, module=r"torch\._jit_internal")

from autogpt_gui.cli import run  # noqa: E402

if __name__ == "__main__":
    multiprocessing.freeze_support()
    run()
