"""The measured study of delayed negatives (issue 6): paired sweeps over start steps, samplers and step counts on
the embedded model (or any SD 1.x checkpoint with CLIP scoring), the per-step neutralization signals, and the
evaluation of ``negdelay.auto`` against the per-image oracle. See docs/study.md.

- ``protocol``: cells (prompt set x sampler x steps x start steps x seeds), run as batched paired calls, resumable.
- ``signals``: per-step noise predictions (unconditional, prompt, negative) on the no-negative trajectory.
- ``scoring``: the toy world's detector, or CLIP presence scores for real checkpoints.
- ``report``: tables with Wilson / bootstrap intervals, the oracle, plots, Markdown.
"""
