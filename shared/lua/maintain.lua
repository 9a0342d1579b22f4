-- maintain.lua: periodic upkeep any worker runs, in bounded batches: promotes
-- due scheduled jobs, returns expired leases, trims the dead letter.
--
-- ARGV[H+1]  most items of each kind to handle in this call
--
-- Returns { promoted, reaped, trimmed, next_due_ms (-1 if none) }.
local limit = tonumber(ARGV[H + 1])
local promoted = promote(limit)
local reaped = reap(limit)
local trimmed = trim_dead(limit) + trim_finished(limit)
-- Done jobs recorded before `done_batches` replaced the `finished` sorted
-- set (an upgrade): still deleted when their retention ends. Upkeep only,
-- never on the claim/settle path; a no-op once the old set is gone.
local legacy = redis.call('ZRANGEBYSCORE', P .. 'finished', '-inf', NOW_S, 'LIMIT', 0, limit)
if #legacy > 0 then
  redis.call('ZREM', P .. 'finished', unpack(legacy))
  forget(legacy)
  trimmed = trimmed + #legacy
end
-- Claimable jobs were indexed in a `pending` sorted set before they were
-- counted in `meta.pending` (an upgrade, or a worker of the older version
-- still running): the count is taken afresh from the tenants' queues (each
-- tenant with work is ready or capped) and the old set dropped; a no-op
-- once no worker of the older version recreates it.
if redis.call('EXISTS', P .. 'pending') == 1 then
  flush_jobs()
  local count = 0
  for _, t in ipairs(redis.call('ZRANGE', READY, 0, -1)) do count = count + redis.call('LLEN', tq_key(t)) end
  for _, t in ipairs(redis.call('SMEMBERS', BLOCKED)) do count = count + redis.call('LLEN', tq_key(t)) end
  redis.call('HSET', META, 'pending', count)
  redis.call('DEL', P .. 'pending')
end
flush_jobs()
if promoted + reaped > 0 then redis.call('PUBLISH', WAKE, 'due') end
return { promoted, reaped, trimmed, next_due() }
