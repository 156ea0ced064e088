"""The ``negdelay`` program: the lab's commands (``negdelay.lab.cli``) and the study's (``negdelay.study.cli``).

This module is the only place that puts the two together, so that the lab never imports the study."""

from __future__ import annotations

from .lab.cli import app, main as _lab_main
from .study.cli import register

register(app)


def main(argv=None) -> None:
    """Console entry point (``negdelay``, ``python -m negdelay``, ``accelerate launch -m negdelay``)."""
    _lab_main(argv)


if __name__ == "__main__":
    main()
