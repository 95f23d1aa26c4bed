"""autogpt-gui: train a GPT-style language model point-and-click, and keep what it learned."""
__version__ = "0.1.0"
