"""The model: one class, its LoRA adapters, Hugging Face weights in and out. Knows nothing of training or run folders."""
