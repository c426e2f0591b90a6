"""The IRC service's defaults, importable without Twisted's IRC module (which imports the reactor)."""

MAX_LINE = 2048
FLOOD_RATE = 10.0
FLOOD_BURST = 50
MAX_PENDING = 1 << 20
MAX_CONNECTIONS = 1000
MAX_PER_IP = 20
PING_INTERVAL = 90.0
PING_TIMEOUT = 60.0
REGISTER_TIMEOUT = 60.0
MOTD = (
    "Welcome to netsuite's chat over IRC.\n"
    "Channel #lobby is the chat's lobby; /join #NAME enters (or creates) another room.\n"
    "You are in one channel at a time: joining one leaves the other.\n"
    "Nicks and channels: 1-32 letters or digits of any script, _ or - (小明, #大厅 are fine)."
)
