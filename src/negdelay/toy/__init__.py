"""The shapes world and the small Stable Diffusion model trained on it."""
