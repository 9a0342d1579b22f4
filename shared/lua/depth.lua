-- depth.lua: the queue's depth by state, read in one call (changes nothing).
--
-- Claimable jobs are counted by `meta.pending` (see prelude.lua). The oldest
-- one is at the head of some tenant's queue: a queue holds its jobs in the
-- order they became claimable, except jobs handed back to its head, which
-- are younger than those behind them (and claimed next). So the heads of
-- the tenants with work (the next ARGV[H+1] to be served, then as many
-- capped ones) give its age with a few calls per tenant, not a removal from
-- an index for every job claimed.
--
-- ARGV[H+1]  most tenants whose queue heads are read, from `ready` and from
--            `blocked` each
--
-- Returns { now_ms, pending, oldest_ready_ms (-1 if nothing is claimable),
--   scheduled, leased (the pin excluded), dead, tenants_ready, tenants_blocked,
--   then the `meta` hash as field, value pairs }
local scan = tonumber(ARGV[H + 1])
local tenants = redis.call('ZRANGE', READY, 0, scan - 1)
for _, t in ipairs(redis.call('SRANDMEMBER', BLOCKED, scan)) do tenants[#tenants + 1] = t end
local heads = {}
for _, t in ipairs(tenants) do
  local id = redis.call('LINDEX', tq_key(t), 0)
  if id then heads[#heads + 1] = id end
end
local oldest = -1
if #heads > 0 then
  local ready = redis.call('HMGET', field_key('ready_at'), unpack(heads))
  local enqueued = redis.call('HMGET', field_key('enqueued_at'), unpack(heads))
  for i = 1, #heads do
    local at = tonumber(ready[i] or enqueued[i])
    if at and (oldest < 0 or at < oldest) then oldest = at end
  end
end
local pending = tonumber(redis.call('HGET', META, 'pending')) or 0
if pending < 0 then pending = 0 end
local leased = redis.call('ZCARD', LEASES)
if redis.call('ZSCORE', LEASES, LEASES_PIN) then leased = leased - 1 end
local out = { NOW, pending, oldest, redis.call('ZCARD', SCHEDULED), leased,
  redis.call('ZCARD', DEAD), redis.call('ZCARD', READY), redis.call('SCARD', BLOCKED) }
for _, v in ipairs(redis.call('HGETALL', META)) do out[#out + 1] = v end
return out
