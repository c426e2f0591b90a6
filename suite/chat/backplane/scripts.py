"""
The Lua scripts the backplane runs in Redis, and its key names.

Each change a node makes is one script, so Redis applies it atomically
and in the order the node sent it: a nickname claim with its ``nick``
event, a line with its history entry.  The events of one reactor turn go
as one script and one pub/sub message (a JSON array): far fewer round
trips and messages under load, the same order.  (Keys named in ARGV are
fine on one Redis; the backplane does not support Redis Cluster.)  Keys (all under ``netsuite:chat:``):

- ``nick:LOOK``: the node holding a nickname, or any name confusable with
  it (LOOK: the name's skeleton, see :func:`nick_key`; expires unless renewed);
- ``node:ID``: a node is alive (expires unless renewed);
- ``nodes``: the node ids ever seen (pruned as they expire);
- ``users:ID``: a node's users, ``KEY -> "NICK ROOM"`` (for newcomers);
- ``history:ROOM``: a room's recent lines (capped), as published;
- ``topic:ROOM``: a room's topic event.

Every key expires unless renewed: the node keys, nick keys and users hashes
with the node timeout; a room's history and topic ``--chat-room-ttl`` after
they were last written or last renewed by the heartbeat of a node with
users in that room, so rooms nobody is in leave nothing behind for long.
"""

from __future__ import annotations

from suite.chat.names import look_key

PREFIX = "netsuite:chat:"


def channel(db: int) -> str:
    """The pub/sub channel: channels ignore ``SELECT``, so it names the database."""
    return f"{PREFIX}{db}:events"


def nick_key(key: str) -> str:
    """
    The claim of the nickname whose name key is ``key``: named by its look
    (:func:`suite.chat.names.look_key`), so that two nodes claiming
    confusable names (``alice``, Cyrillic ``аlice``) at once claim one key,
    and Redis gives it to one of them.
    """
    return f"{PREFIX}nick:{look_key(key)}"


def node_key(node: str) -> str:
    return f"{PREFIX}node:{node}"


def users_key(node: str) -> str:
    return f"{PREFIX}users:{node}"


def history_key(room: str) -> str:
    return f"{PREFIX}history:{room}"


def topic_key(room: str) -> str:
    return f"{PREFIX}topic:{room}"


NODES = PREFIX + "nodes"
NO_KEY = PREFIX + "none"

#: Heartbeat and resync.  KEYS: node key, NODES, users hash, nick keys...
#: ARGV: node, ttl ms, node key prefix, users prefix, then field and value
#: per nick key.  Claims or renews every nick key the node should hold,
#: rewrites its users hash, prunes dead nodes.  Returns
#: ``{node key existed, nick fields held by another node, live nodes}``.
SYNC = """
local node, ttl = ARGV[1], tonumber(ARGV[2])
local existed = redis.call('EXISTS', KEYS[1])
redis.call('SET', KEYS[1], '1', 'PX', ttl)
redis.call('SADD', KEYS[2], node)
redis.call('DEL', KEYS[3])
local lost = {}
for i = 4, #KEYS do
  local field, value = ARGV[3 + 2 * (i - 3)], ARGV[4 + 2 * (i - 3)]
  local owner = redis.call('GET', KEYS[i])
  if owner == false or owner == node then
    redis.call('SET', KEYS[i], node, 'PX', ttl)
    redis.call('HSET', KEYS[3], field, value)
  else
    table.insert(lost, field)
  end
end
redis.call('PEXPIRE', KEYS[3], ttl)
local live = {}
for _, other in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', ARGV[3] .. other) == 1 then
    table.insert(live, other)
  else
    redis.call('SREM', KEYS[2], other)
    redis.call('DEL', ARGV[4] .. other)
  end
end
return {existed, lost, live}
"""

#: A nickname claim.  KEYS: new nick key, old nick key, users hash, node
#: key.  ARGV: node, ttl ms, old field, new field, new value, channel, event
#: ("" for none).  Returns 0 if another node holds the nickname, else
#: publishes.  The claim expires with the node key, so a dead node's
#: nicknames are free as soon as it counts as dead.
CLAIM = """
local owner = redis.call('GET', KEYS[1])
if owner and owner ~= ARGV[1] then return 0 end
local ttl = redis.call('PTTL', KEYS[4])
if ttl <= 0 then ttl = tonumber(ARGV[2]) end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl)
if KEYS[2] ~= KEYS[1] and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
end
redis.call('HDEL', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
if ARGV[7] ~= '' then redis.call('PUBLISH', ARGV[6], ARGV[7]) end
return 1
"""

#: Events, in order, as one message.  KEYS: users hash.  ARGV: channel,
#: node, then 7 per event: the event, field to set in the users hash, its
#: value, field to delete, key to store the event in (history, topic),
#: store mode ("list CAP TTL", "set 0 TTL" or "": TTL in ms, 0 for none),
#: nick key to release ("" for none).
#: Publishes ``[event, ...]`` once; returns how many nodes received it.
PUBLISH = """
local channel, node = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV, 7 do
  local event = ARGV[i]
  if ARGV[i + 3] ~= '' then redis.call('HDEL', KEYS[1], ARGV[i + 3]) end
  if ARGV[i + 1] ~= '' then redis.call('HSET', KEYS[1], ARGV[i + 1], ARGV[i + 2]) end
  local mode, cap, ttl = string.match(ARGV[i + 5], '^(%a*) ?(%d*) ?(%d*)$')
  if mode == 'list' then
    redis.call('RPUSH', ARGV[i + 4], event)
    redis.call('LTRIM', ARGV[i + 4], -tonumber(cap), -1)
  elseif mode == 'set' then
    redis.call('SET', ARGV[i + 4], event)
  end
  if mode ~= '' and ttl ~= '' and tonumber(ttl) > 0 then
    redis.call('PEXPIRE', ARGV[i + 4], tonumber(ttl))
  end
  if ARGV[i + 6] ~= '' and redis.call('GET', ARGV[i + 6]) == node then
    redis.call('DEL', ARGV[i + 6])
  end
  table.insert(out, event)
end
return redis.call('PUBLISH', channel, '[' .. table.concat(out, ',') .. ']')
"""

#: Every live node's users.  KEYS: NODES.  ARGV: node key prefix, users
#: prefix.  Returns ``{node, {field, value, ...}, node, ...}``.
SNAPSHOT = """
local out = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. node) == 1 then
    table.insert(out, node)
    table.insert(out, redis.call('HGETALL', ARGV[2] .. node))
  end
end
return out
"""

#: A node stops.  KEYS: node key, NODES, users hash, nick keys...  ARGV:
#: node, channel, event.
BYE = """
redis.call('DEL', KEYS[1], KEYS[3])
redis.call('SREM', KEYS[2], ARGV[1])
for i = 4, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[1] then redis.call('DEL', KEYS[i]) end
end
return redis.call('PUBLISH', ARGV[2], ARGV[3])
"""

#: A room's state for a node that starts hosting it.  KEYS: history, topic.
#: ARGV: how many lines.  Returns ``{lines, topic event or false}``.
ROOM = """
local n = tonumber(ARGV[1])
local lines = {}
if n > 0 then lines = redis.call('LRANGE', KEYS[1], -n, -1) end
return {lines, redis.call('GET', KEYS[2])}
"""

#: A node's rooms are still in use.  KEYS: history and topic keys of the
#: rooms with users on this node.  ARGV: TTL in ms.  Renews them (a key
#: that does not exist stays so).
ROOMS = """
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], tonumber(ARGV[1])) end
return #KEYS
"""
