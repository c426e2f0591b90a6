"""python -m suite.demo [--lang en|zh] [NAME]: run a narrated demo (without NAME: list them)."""

import argparse
import importlib
import os

from twisted.internet import defer, task

from suite.demo import DEMOS
from suite.demo.lang import LANGUAGES, Text, pick_language


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m suite.demo", description="Narrated netsuite demos.")
    parser.add_argument("name", nargs="?", choices=DEMOS, metavar="NAME", help=", ".join(DEMOS))
    parser.add_argument("--lang", choices=LANGUAGES,
                        help="language of the narration (default: from LC_ALL, LC_MESSAGES or LANG)")
    args = parser.parse_args()
    text = Text(pick_language(args.lang, os.environ))
    if args.name is None:
        print(text("usage") + "\n")
        for name in DEMOS:
            print(f"  {name:8} {text('summary.' + name)}")
        raise SystemExit(0)
    module = importlib.import_module(f"suite.demo.{args.name}")
    task.react(lambda reactor: defer.ensureDeferred(module.run(reactor, text)))


if __name__ == "__main__":
    main()