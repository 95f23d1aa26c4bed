"""Data: sources, tasks, tokenizers, token cache and loaders."""
