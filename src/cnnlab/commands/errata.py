"""``cnnlab errata [ID] [--json|--markdown]``: errors and ambiguities in the course material."""

from __future__ import annotations

import json

from . import new_command


def add_parser(sub) -> None:
    p = new_command(
        sub, "errata", help="every error or ambiguity in the course slides, explained",
        examples=["cnnlab errata", "cnnlab errata alexnet-224",
                  "cnnlab errata kron-snippet   # runs the snippet and shows the shapes",
                  "cnnlab errata --json", "cnnlab errata --markdown > docs/errata.md"],
        description="Each entry: what the slide says, what is right, why, and the cnnlab "
                    "command that shows it. Figures are computed by cnnlab, not typed in. "
                    "With an ID: that entry, and its demonstration where it has one.")
    p.add_argument("id", nargs="?", help="one entry (see the list)")
    fmt = p.add_mutually_exclusive_group()
    fmt.add_argument("--json", action="store_true", help="print JSON")
    fmt.add_argument("--markdown", action="store_true",
                     help="print the page docs/errata.md is generated from")
    p.set_defaults(func=run)


def run(args) -> int:
    from ..lab.errata import errata, find, format_entry, render_markdown

    entries = [find(args.id)] if args.id else errata()
    if args.json:
        data = [dict(e.to_dict(), demonstration=e.demo() if e.demo else None) for e in entries]
        print(json.dumps(data if not args.id else data[0], indent=2))
    elif args.markdown:
        print(render_markdown(entries), end="")
    else:
        print("\n\n".join(format_entry(e, demo=bool(args.id)) for e in entries))
        if not args.id:
            print(f"\n{len(entries)} entries; 'cnnlab errata ID' shows one with its "
                  "demonstration")
    return 0
