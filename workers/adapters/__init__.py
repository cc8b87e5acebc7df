"""The torch side of per-user LoRA adapters and preference vectors: fit, evaluate, store, mix."""
