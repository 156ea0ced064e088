"""``python -m negdelay.pipelines [--json | --markdown | --write-docs PATH]``: the served/not-served table."""

from __future__ import annotations

import argparse
import os
import sys

from .coverage import table
from .docs import as_json, as_markdown, as_text, replace_section


def main(argv=None) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = argparse.ArgumentParser(prog="python -m negdelay.pipelines", description=__doc__)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--json", action="store_true", help="a JSON list of objects (class, entry, mode, status, ...)")
    group.add_argument("--markdown", action="store_true", help="the generated section of docs/pipelines.md")
    group.add_argument("--write-docs", metavar="PATH", help="replace the generated section of PATH")
    args = parser.parse_args(argv)
    rows = table(modular=not args.markdown and not args.write_docs)
    if args.write_docs:
        with open(args.write_docs, encoding="utf-8") as f:
            text = f.read()
        with open(args.write_docs, "w", encoding="utf-8") as f:
            f.write(replace_section(text, as_markdown(rows)))
        return 0
    print(as_json(rows) if args.json else as_markdown(rows) if args.markdown else as_text(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
