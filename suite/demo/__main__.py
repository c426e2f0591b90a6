"""python -m suite.demo [NAME]: run a narrated demo (without NAME: list them)."""

import importlib
import sys

from twisted.internet import defer, task

from suite.demo import DEMOS


def main() -> None:
    if len(sys.argv) != 2 or sys.argv[1] not in DEMOS:
        print("usage: python -m suite.demo NAME\n")
        for name, summary in DEMOS.items():
            print(f"  {name:8} {summary}")
        raise SystemExit(0 if len(sys.argv) == 1 else 2)
    module = importlib.import_module(f"suite.demo.{sys.argv[1]}")
    task.react(lambda reactor: defer.ensureDeferred(module.run(reactor)))


main()
