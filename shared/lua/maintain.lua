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
flush_jobs()
if promoted + reaped > 0 then redis.call('PUBLISH', WAKE, 'due') end
return { promoted, reaped, trimmed, next_due() }
