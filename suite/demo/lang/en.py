"""The demos' narration in English."""

MESSAGES: dict[str, str] = {
    "usage": "usage: python -m suite.demo [--lang en|zh] NAME",
    "summary.echo": "many clients at once on the TCP echo service, and a UDP echo",
    "summary.chat": "three users talking: nicks, messages, /me, history, /msg, rooms, a forged line, /quit",
    "summary.upload": "a file upload cut off half-way, resumed, verified, and downloaded back",
    "yes": "yes",
    "no": "no",
    "sees": "{who:>6} sees  | {line}",
    "sends": "{who:>6} sends | {line}",
    # chat
    "chat.server": (
        "A chat server listens on {address}. TCP is a byte stream with no message boundaries, "
        "so every message is one line, ended by a newline. Nobody logs in: users just connect."
    ),
    "chat.alice_arrives": (
        "alice connects: the server gives her a guest nickname and puts her in the lobby; "
        "she takes the nickname alice with /nick alice."
    ),
    "chat.bob_arrives": "bob connects the same way while alice is there: she sees him arrive and rename himself.",
    "chat.alice_talks": "alice types a line: everyone in the room gets it with her name, alice too (her confirmation).",
    "chat.bob_acts": "bob uses /me for an action.",
    "chat.carol_arrives": (
        "carol connects and takes her nickname: the room's recent messages are replayed to her as history."
    ),
    "chat.private": "alice sends carol a private message with /msg: bob never sees it.",
    "chat.rooms": "bob moves to the room games with /join; carol asks who is left with /who.",
    "chat.forge": (
        "alice tries to forge a line: a carriage return, a fake message from admin, and an escape "
        "sequence that would clear a terminal."
    ),
    "chat.forge_result": (
        "Every control character became \ufffd: it all stays on alice's own line, and nobody saw a line from admin."
    ),
    "chat.quit": "alice leaves with /quit lunch time; carol is told why. Then bob and carol disconnect.",
    "chat.done": "Done. Try it yourself: twistd -n netsuite --mode chat, then nc 127.0.0.1 8023",
    # echo
    "echo.server": "A TCP echo server on {address}, at most 3 connections at a time.",
    "echo.idle": "Client 'idle' connects and sends nothing. A blocking server would now be stuck in recv() for it.",
    "echo.busy": "Client 'busy' connects and sends a line: it is served at once, although 'idle' is still there.",
    "echo.got_back": "{who} got back: {data}",
    "echo.third": "Client 'third' connects: with 'idle' and 'busy' that makes 3, the cap.",
    "echo.connected": "{who} is connected",
    "echo.fourth": (
        "Client 'fourth' connects one too many: it is refused with one line; 'third' is unaffected and still served."
    ),
    "echo.refused": "{who} got: {data}",
    "echo.udp": "UDP echo, with no connection: Client 'probe' sends one datagram and gets the same bytes back.",
    "echo.datagram": "{who} sent a {size}-byte datagram; it came back with {got} bytes",
    "echo.done": "Done. Try it yourself: twistd -n netsuite --mode echo, then netsuite echo 127.0.0.1:8007 hello",
    # upload
    "upload.server": "A file server on {address}; a 6 MiB picture to send (sha256 {sha}...).",
    "upload.cut": "A client starts the upload and dies after 2 MiB.",
    "upload.listed": "files the server shows now: {names} (the partial data is hidden)",
    "upload.resume": "The upload is run again: the server says how much it has, and only the rest is sent.",
    "upload.resuming": "resuming at byte {done} of {total}",
    "upload.stored": "stored {name}: {size} bytes, sha256 matches: {matches}",
    "upload.download": "It is downloaded back, through a temporary file renamed only once its sha256 matched.",
    "upload.identical": "{name}: {size} bytes, identical: {same}",
    "upload.done": "Done. Try it yourself: twistd -n netsuite --mode upload, then netsuite upload 127.0.0.1:8021 FILE",
}
