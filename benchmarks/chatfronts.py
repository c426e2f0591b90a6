"""
Chat fan-out by front: the same ChatServer reached as a line chat, over IRC
and over WebSocket, measured in the same run.

100 clients of one front in one room (#lobby), 10 of them sending as fast
as TCP allows; lines delivered per second to the 90 listeners.  The target
(issue 13): IRC and WebSocket each at least 0.7x the line chat.  Every
measurement starts a fresh server (benchmarks/servers/netsuite_fronts.py,
limits off, no history) and ends it by PID.
"""

from __future__ import annotations

from benchmarks._harness import HERE, PYTHON, Series, Server, run_load, table

FRONTS = {
    "netsuite line chat": ("line", "chat"),
    "netsuite IRC": ("irc", "irc"),
    "netsuite WebSocket": ("websocket", "websocket"),
}


def server(front: str) -> Server:
    return Server(front, [PYTHON, str(HERE / "servers" / "netsuite_fronts.py")],
                  rf"{FRONTS[front][1]} listening on (\d+)")


def run(quick: bool = False, clients: int = 100, senders: int = 10, repetitions: int = 5) -> str:
    repetitions = 1 if quick else repetitions
    duration, warmup = (1.0, 0.5) if quick else (4.0, 1.0)
    series = {name: Series(name) for name in FRONTS}
    for _ in range(repetitions):
        for name, (protocol, _) in FRONTS.items():
            s = server(name)
            try:
                port = s.start()
                result = run_load(
                    [PYTHON, "-m", "benchmarks.chatload", "--protocol", protocol, "--port", str(port),
                     "--clients", str(clients), "--senders", str(senders),
                     "--duration", str(duration), "--warmup", str(warmup)],
                    timeout=60 + duration * 4,
                )
                series[name].values.append(result["lines_per_s"])
            finally:
                s.stop()
    return table(
        f"Chat fan-out by front: {clients} clients of one front, {senders} senders, as fast as possible "
        "(target: IRC and WebSocket >= 0.7x the line chat)",
        "lines delivered/s", list(series.values()), "netsuite line chat",
    )


if __name__ == "__main__":
    print(run())  # noqa: T201
