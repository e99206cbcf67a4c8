"""The shared trainer: loop, checkpoints, distributed, progress."""
