"""The lab: paired comparisons, start-step sweeps and everyday generation with delayed negatives (``negdelay`` CLI).

The CLI (``cli.py``) is a thin layer over plain functions: ``run.compare(cfg)``, ``run.sweep(cfg)``,
``run.generate(cfg)`` with settings from ``config.build(command, yaml_file, **overrides)``. See docs/lab.md.
"""
