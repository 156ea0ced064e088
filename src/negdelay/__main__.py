"""``python -m negdelay ...`` and ``accelerate launch -m negdelay sweep ...``: the lab's command line."""

from negdelay.cli import main

if __name__ == "__main__":
    main()
