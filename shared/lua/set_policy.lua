-- set_policy.lua: sets a tenant's weight and in-flight cap. The next claim
-- uses them; no worker restart is needed.
--
-- ARGV[H+1]  tenant
-- ARGV[H+2]  weight (> 0; its share under saturation is proportional to it)
-- ARGV[H+3]  cap (most jobs in flight across the fleet; 0 = no cap)
--
-- Returns "ok".
local t, weight, cap = ARGV[H + 1], ARGV[H + 2], tonumber(ARGV[H + 3])
redis.call('HSET', tenant_key(t), 'weight', weight, 'cap', cap)
local inflight = tonumber(redis.call('HGET', tenant_key(t), 'inflight')) or 0
local at_cap = cap > 0 and inflight >= cap
if at_cap then
  local vtime = redis.call('ZSCORE', READY, t)
  if vtime then
    redis.call('ZREM', READY, t)
    redis.call('HSET', tenant_key(t), 'vtime', vtime)
    redis.call('SADD', BLOCKED, t)
  end
elseif redis.call('SREM', BLOCKED, t) == 1 then
  if redis.call('LLEN', tq_key(t)) > 0 then
    activate(t)
    redis.call('PUBLISH', WAKE, 'policy')
  end
end
return 'ok'
