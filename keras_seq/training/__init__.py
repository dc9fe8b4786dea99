"""Training: the loop and its callbacks (loop), data-parallel jax (distributed)."""
