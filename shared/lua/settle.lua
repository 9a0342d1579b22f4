-- settle.lua: records the outcome of a batch of leased jobs.
--
-- An outcome only applies while the caller still holds the job's lease: the
-- token must match the one issued by the claim. A worker whose lease expired
-- (and whose job another worker may now run) changes nothing: "stale".
--
-- Like claim.lua, it reads and writes the batch's records with one call
-- each; leases, tenant slots and counters are updated once per batch.
--
-- ARGV[H+1 ..]  per job: id, token, outcome, then what that outcome needs:
--   "done", "release"   nothing more
--   "retry"             delay_ms (the backoff before the next attempt), error
--   "dead"              error
-- (Errors are kept in the job's history.) Done jobs, nearly all of them,
-- cost three arguments, not five: each is parsed and converted for Lua.
--
-- "release" hands an unfinished job back (graceful shutdown): it goes to the
-- head of its tenant's queue and the attempt does not count.
--
-- Returns one status per job: "done", "scheduled", "dead", "released", "stale".
local out = {}
local woke = false
local ids, tokens, outcomes, extra = {}, {}, {}, {}
local n, a = 0, H + 1
while a <= #ARGV do
  n = n + 1
  local outcome = ARGV[a + 2]
  ids[n], tokens[n], outcomes[n] = ARGV[a], ARGV[a + 1], outcome
  if outcome == 'retry' then
    extra[n] = a + 3
    a = a + 5
  elseif outcome == 'dead' then
    extra[n] = a + 3
    a = a + 4
  else
    a = a + 3
  end
end
-- The batch's records, one call per field, read as plain arrays: building a
-- table per job costs more than the calls themselves.
local leases, states, tenants = {}, {}, {}
if n > 0 then
  leases = redis.call('HMGET', field_key('lease'), unpack(ids))
  states = redis.call('HMGET', field_key('state'), unpack(ids))
  tenants = redis.call('HMGET', field_key('tenant'), unpack(ids))
end
local seen = {}          -- an id settled twice in one batch: the second is stale
local settled, ns = {}, 0          -- ids whose lease ends here
-- Done jobs, the common case, are written straight into the arguments of
-- one HSET per field (the `set` buffer is for the rarer outcomes).
local done_state, done_at, done_ids, nd = {}, {}, {}, 0
local freed = {}         -- tenant -> slots freed
local freed_order = {}
local requeued = {}      -- tenants that got a job back
local completed, retried = 0, 0
local expires = int(NOW + DONE_TTL_MS)
for i = 1, n do
  local id, token, outcome = ids[i], tokens[i], outcomes[i]
  if seen[id] or not lease_holds(states[i], leases[i], token) then
    out[i] = 'stale'
  else
    seen[id] = true
    local t = tenants[i]
    ns = ns + 1
    settled[ns] = id
    local f = freed[t]
    if f then
      freed[t] = f + 1
    else
      freed[t] = 1
      freed_order[#freed_order + 1] = t
    end
    if outcome == 'done' then
      nd = nd + 1
      local k = nd * 2
      done_state[k - 1], done_state[k] = id, 'done'
      done_at[k - 1], done_at[k] = id, NOW_S
      done_ids[nd] = id
      completed = completed + 1
      out[i] = 'done'
    else
      local attempts = redis.call('HGET', field_key('attempts'), id)
      if outcome == 'retry' then
        local delay, err = tonumber(ARGV[extra[i]]) or 0, ARGV[extra[i] + 1]
        append_history(id, attempts, err)
        set(id, 'state', 'retrying')
        set(id, 'run_at', int(NOW + delay))
        redis.call('ZADD', SCHEDULED, int(NOW + delay), id)
        retried = retried + 1
        out[i] = 'scheduled'
      elseif outcome == 'dead' then
        local err = ARGV[extra[i]]
        append_history(id, attempts, err)
        bury(id, err)
        out[i] = 'dead'
      else
        set(id, 'attempts', int((tonumber(attempts) or 1) - 1))
        -- Back at the head of its tenant's queue; release_slots() below makes
        -- the tenant claimable once its in-flight count is right.
        redis.call('LPUSH', tq_key(t), id)
        PENDING_DELTA = PENDING_DELTA + 1
        set(id, 'state', 'pending')
        set(id, 'ready_at', NOW_S)
        requeued[t] = true
        woke = true
        out[i] = 'released'
      end
    end
  end
end
if nd > 0 then
  redis.call('HSET', field_key('state'), unpack(done_state))
  redis.call('HSET', field_key('finished_at'), unpack(done_at))
end
if ns > 0 then
  redis.call('ZREM', LEASES, unpack(settled))
  for _, t in ipairs(freed_order) do
    release_slots(t, freed[t], requeued[t] == true)
  end
  if nd > 0 then redis.call('RPUSH', DONE_BATCHES, expires .. ' ' .. table.concat(done_ids, ' ')) end
  if completed > 0 then redis.call('HINCRBY', META, 'completed', completed) end
  if retried > 0 then redis.call('HINCRBY', META, 'retried', retried) end
end
flush_jobs()
-- Retention of done jobs keeps pace with the rate they finish at.
trim_finished(2 * n + 10)
-- A released job, or a tenant freed from its in-flight cap, is work an idle
-- worker may be waiting for.
if woke or ACTIVATED then redis.call('PUBLISH', WAKE, 'settle') end
return out
