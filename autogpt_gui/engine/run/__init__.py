"""The run folder: checkpoints, control requests, the lock, the listing of runs. Knows nothing of the model's internals."""
