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
flush_jobs()
if promoted + reaped > 0 then redis.call('PUBLISH', WAKE, 'due') end
return { promoted, reaped, trimmed, next_due() }
