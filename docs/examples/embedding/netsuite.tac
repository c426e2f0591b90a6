# twistd -ny docs/examples/embedding/netsuite.tac
#
# netsuite's services inside your own Twisted application: built in code,
# with every limit set explicitly, and shared chat state on two listeners.
import os

from twisted.application.service import Application, MultiService

from suite import ChatFactory, ChatServer, EchoFactory, FileFactory, ListeningService, Storage, UDPEchoProtocol

# Ports from the environment so a test can pick free ones; loopback always.
port = lambda name, default: os.environ.get(f"NETSUITE_{name}_PORT", default)  # noqa: E731

application = Application("my-netsuite")
services = MultiService()
services.setServiceParent(application)

ListeningService(
    "echo", f"tcp:{port('ECHO', 9007)}:interface=127.0.0.1",
    EchoFactory(max_connections=50, idle_timeout=30),
).setServiceParent(services)

ListeningService(
    "udp-echo", f"udp:{port('UDP', 9007)}:interface=127.0.0.1",
    UDPEchoProtocol(rate=100, burst=200, global_rate=10_000),
).setServiceParent(services)

chat = ChatServer(history=50)  # one chat, reachable two ways
ListeningService(
    "chat", f"tcp:{port('CHAT', 9023)}:interface=127.0.0.1",
    ChatFactory(chat, flood_rate=5, flood_burst=20, max_per_ip=10),
).setServiceParent(services)
ListeningService(
    "chat-unix", f"unix:{os.environ.get('NETSUITE_CHAT_SOCKET', '/tmp/netsuite-chat.sock')}",
    ChatFactory(chat, max_per_ip=None),
).setServiceParent(services)

storage = Storage(os.environ.get("NETSUITE_STORAGE", "netsuite-files"), max_file_size=100 << 20, quota=1 << 30)
ListeningService(
    "files", f"tcp:{port('FILES', 9021)}:interface=127.0.0.1",
    FileFactory(storage, max_transfers=4, transfer_timeout=30),
).setServiceParent(services)
