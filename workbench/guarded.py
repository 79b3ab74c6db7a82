"""One round trip per job step: RQ's own writes, sent as one guarded script instead of WATCH/MULTI/EXEC.

A run's end is written by RQ's own methods (`Job._handle_success`, `Result.create`, registries...)
onto a pipeline. `GuardedPipeline` records those commands and sends them in ONE `EVALSHA` of a small
interpreter script, which first checks, atomically, what the worker's finishing transaction used
to check with WATCH and a read (`workbench.fencing.guard`): the job's run generation did not move
on, and its end was not recorded already. It can also refuse when the job has dependents (RQ
moves those with its own, WATCHed path). Then it runs every command with `redis.pcall`, so a
failing command costs that command only, as inside MULTI/EXEC, and its error is raised afterwards.

Against WATCH + HMGET + MULTI + ... + EXEC this saves two round trips and four broker commands per
job, and a few more by merging what RQ writes twice (`HSET` of the job hash, field by field, then
whole) and dropping what cannot change anything (EXPIRE of a dependents set that is empty).

`TAKE` is the start's counterpart: pop the next job id into the queue's intermediate list (as RQ's
LMOVE does), read the job hash and claim the run (`workbench.fencing`: only a queued job starts,
with its generation +1), in one script.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

#: Marks an op that runs only when the op before it returned 1 (a first HINCRBY, a new ZADD member):
#: the key was just created, so this is when its TTL is set. Every later writer finds the TTL in place.
IF_NEW = "IFNEW"

#: KEYS[1] the job hash, KEYS[2] its dependents set.
#: ARGV[1] generation ('' = no guard), ARGV[2] the generation field, ARGV[3] the ended field,
#: ARGV[4] '1' to refuse when the job has dependents; then the ops: a count, then that many words.
_APPLY_LUA = """
if ARGV[1] ~= '' then
  local seen = redis.call('HMGET', KEYS[1], ARGV[2], ARGV[3])
  local mine = tonumber(ARGV[1])
  if seen[1] and tonumber(seen[1]) > mine then return {'superseded', seen[1]} end
  if seen[2] and tonumber(seen[2]) == mine then return {'recorded', seen[2]} end
end
if ARGV[4] == '1' and redis.call('SCARD', KEYS[2]) > 0 then return {'dependents', ''} end
local errors = {}
local last = nil
local i = 5
local n = 0
while i <= #ARGV do
  local count = tonumber(ARGV[i])
  n = n + 1
  if ARGV[i + 1] == 'IFNEW' then
    if last == 1 then last = redis.pcall(unpack(ARGV, i + 2, i + count)) else last = nil end
  else
    last = redis.pcall(unpack(ARGV, i + 1, i + count))
  end
  if type(last) == 'table' and last.err then table.insert(errors, n .. ': ' .. last.err) end
  i = i + count + 1
end
return {'ok', table.concat(errors, '; ')}
"""
APPLY = Script(None, _APPLY_LUA.encode())  # type: ignore[arg-type]  # bound to a client per call

#: KEYS: the queues' keys, in the worker's order. ARGV[1] the worker's name, ARGV[2] the generation field,
#: ARGV[3] the job key prefix. Returns nil (every queue empty) or {queue index, job id, generation, hash},
#: where generation 0 means the job was not queued any more (then the hash is {status}), -1 that it is gone,
#: -2 that its record is malformed (then {why}; it stays in the intermediate list for the worker to quarantine).
_TAKE_LUA = """
for index, queue in ipairs(KEYS) do
  local id = redis.call('LMOVE', queue, queue .. ':intermediate', 'LEFT', 'RIGHT')
  if id then
    local key = ARGV[3] .. id
    local data = redis.pcall('HGETALL', key)
    if type(data) == 'table' and data.err then return {index, id, -2, {data.err}} end
    if #data == 0 then
      redis.call('LREM', queue .. ':intermediate', 1, id)
      return {index, id, -1, {}}
    end
    local status, generation = nil, 0
    for f = 1, #data, 2 do
      if data[f] == 'status' then status = data[f + 1] end
      if data[f] == ARGV[2] then generation = tonumber(data[f + 1]) end
    end
    if not status then return {index, id, -2, {'no status'}} end
    if status ~= 'queued' then
      redis.call('LREM', queue .. ':intermediate', 1, id)
      return {index, id, 0, {status or 'gone'}}
    end
    generation = generation + 1
    redis.call('HSET', key, 'status', 'started', 'worker_name', ARGV[1], ARGV[2], generation)
    return {index, id, generation, data}
  end
end
return nil
"""
TAKE = Script(None, _TAKE_LUA.encode())  # type: ignore[arg-type]


class Refused(Exception):
    """The guard refused the write; `reason` is 'superseded', 'recorded' or 'dependents'."""

    def __init__(self, reason: str, current: int | None) -> None:
        super().__init__(f"refused: {reason}")
        self.reason, self.current = reason, current


def run_script(client: redis.Redis | Pipeline, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """EVALSHA `script`, loading it first when the broker does not know it yet (a fresh or restarted broker)."""
    try:
        return client.evalsha(script.sha, len(keys), *keys, *args)
    except NoScriptError:
        client.script_load(script.script)
        return client.evalsha(script.sha, len(keys), *keys, *args)


class GuardedPipeline(Pipeline):
    """Records the commands RQ queues on it; `execute()` sends them as one guarded script (module doc)."""

    def __init__(
        self,
        client: redis.Redis,
        job_key: str,
        generation: int | None,
        fields: tuple[str, str],
        dependents_key: str | None = None,
    ) -> None:
        super().__init__(client.connection_pool, client.response_callbacks, False, None)
        #: (Not `client`: redis-py's Redis, and so this Pipeline, has a `client()` method it would shadow.)
        self.broker = client
        self.job_key = job_key
        self.generation = generation
        self.fields = fields
        self.dependents_key = dependents_key
        #: Keys whose EXPIRE can be dropped: they cannot exist when the guard let the write through.
        self.absent: set[str] = set()

    def if_new(self, *args: Any) -> None:
        """Queue a command that runs only if the previous one returned 1 (see IF_NEW)."""
        self.command_stack.append(((IF_NEW, *args), {}))

    def ops(self) -> list[tuple[Any, ...]]:
        """The recorded commands, with same-key HSETs merged and no-op EXPIREs dropped."""
        merged: list[tuple[Any, ...]] = []
        for args, _options in self.command_stack:
            name = str(args[0]).upper()
            if name == "EXPIRE" and args[1] in self.absent:
                continue
            if name == "HSET" and merged and str(merged[-1][0]).upper() == "HSET" and merged[-1][1] == args[1]:
                merged[-1] = (*merged[-1], *args[2:])
                continue
            merged.append(tuple(args))
        return merged

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        words: list[Any] = [
            "" if self.generation is None else self.generation,
            *self.fields,
            "1" if self.dependents_key else "0",
        ]
        for op in self.ops():
            words.append(len(op))
            words.extend(op)
        keys = [self.job_key, self.dependents_key or self.job_key]
        try:
            reason, detail = run_script(self.broker, APPLY, keys, words)
        finally:
            self.reset()
        reason = reason.decode() if isinstance(reason, bytes) else str(reason)
        detail = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail or "")
        if reason != "ok":
            raise Refused(reason, int(detail) if detail.isdigit() else None)
        if detail and raise_on_error:
            raise redis.ResponseError(f"in the guarded write of {self.job_key}: {detail}")
        return []
