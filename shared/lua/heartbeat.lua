-- heartbeat.lua: a worker says it is alive and consuming this queue; workers
-- silent for longer than the TTL drop out of the registry.
--
-- ARGV[H+1]  worker name
-- ARGV[H+2]  registry TTL in ms
-- ARGV[H+3 ..]  field, value pairs describing the worker (host, concurrency, ...)
--
-- Returns the number of live workers on this queue.
local name, ttl = ARGV[H + 1], tonumber(ARGV[H + 2])
local workers = P .. 'workers'
local wk = P .. 'worker:' .. name
redis.call('ZADD', workers, NOW, name)
if #ARGV >= H + 4 then
  redis.call('HSET', wk, unpack(ARGV, H + 3))
end
redis.call('HSET', wk, 'last_seen', NOW)
redis.call('PEXPIRE', wk, ttl)
redis.call('ZREMRANGEBYSCORE', workers, '-inf', NOW - ttl)
return redis.call('ZCARD', workers)
