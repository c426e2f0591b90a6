"""
Narrated demos: ``python -m suite.demo NAME`` starts netsuite servers and
clients in one process, on 127.0.0.1, tells what happens, and ends by itself.
"""

DEMOS = {
    "echo": "many clients at once on the TCP echo service, and a UDP echo",
    "chat": "three users talking: nicks, messages, /me, history, /msg, rooms, /quit",
    "upload": "a file upload cut off half-way, resumed, verified, and downloaded back",
}
