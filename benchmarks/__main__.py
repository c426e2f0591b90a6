"""
python -m benchmarks [--quick] [SCENARIO ...]

Runs the side-by-side benchmarks (default: all scenarios), prints markdown
tables with medians, min-max and ratios to the baseline measured in the same
run, and writes them to benchmarks/results/.  Not part of the test run.
"""

from __future__ import annotations

import argparse
import sys

from benchmarks import backplane, chat, chatfronts, echo, fairness, files, memory, web
from benchmarks._harness import CHARTS, machine_line, write_charts, write_result

SCENARIOS = {
    "echo": echo.run, "chat": chat.run, "chatfronts": chatfronts.run, "files": files.run, "fairness": fairness.run,
    "memory": memory.run,
    "web": web.run,
    "backplane": backplane.run,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("scenarios", nargs="*", choices=[*SCENARIOS, []], metavar="SCENARIO",
                        help=f"one of {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="a short smoke run (one repetition)")
    args = parser.parse_args(argv)
    machine = machine_line()
    print(f"Machine: {machine}\n", flush=True)
    for name in args.scenarios or SCENARIOS:
        report = SCENARIOS[name](quick=args.quick)
        text = f"## {name}\n\nMachine: {machine}\n\n{report}"
        print(report + "\n", flush=True)
        if not args.quick:
            charts = write_charts(name)
            if charts:
                text += "\n\n" + "\n\n".join(f"![{p.stem}]({p.name})" for p in charts)
            print(f"(written to {write_result(name, text)})\n")
        else:
            CHARTS.clear()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
