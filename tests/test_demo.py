"""The narrated demos run to the end by themselves."""

import pytest
import pytest_twisted

from suite.demo import DEMOS
from tests.helpers import spawn

EXPECTED = {
    "echo": [b"fourth got: error: too many connections (limit 3)", b"a 60000-byte datagram came back with 60000 bytes"],
    "chat": [b"carol sees | [history lobby] <alice> hi bob! anyone else around?",
             b"carol sees | [private] <alice -> carol> welcome! bob waves a lot",
             b"carol sees | *** leave: alice left lobby (quit: lunch time)"],
    "upload": [b"resuming at byte 2097152 of 6291456", b"sha256 matches: True", b"identical: True"],
}


@pytest.mark.parametrize("name", sorted(DEMOS))
@pytest_twisted.ensureDeferred
async def test_demo(name: str) -> None:
    run = spawn(["python", "-m", "suite.demo", name])
    assert await run.ended == 0, run.err.decode()
    for line in EXPECTED[name]:
        assert line in run.out, run.out.decode()
    assert run.out.rstrip().splitlines()[-1].startswith(b"== Done.")


@pytest_twisted.ensureDeferred
async def test_demo_list() -> None:
    run = spawn(["python", "-m", "suite.demo"])
    assert await run.ended == 0
    assert all(name.encode() in run.out for name in DEMOS)
