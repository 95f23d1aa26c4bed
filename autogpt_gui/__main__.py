from autogpt_gui.cli import run

run()
