-- settle.lua: records the outcome of a batch of leased jobs.
--
-- An outcome only applies while the caller still holds the job's lease: the
-- token must match the one issued by the claim. A worker whose lease expired
-- (and whose job another worker may now run) changes nothing: "stale".
--
-- Like claim.lua, it reads and writes the batch's records with one call
-- each; leases, tenant slots and counters are updated once per batch.
--
-- ARGV[H+1 ..]  groups of 5 per job:
--   id, token,
--   outcome   "done" | "retry" | "dead" | "release"
--   delay_ms  for "retry": the backoff before the next attempt
--   error     for "retry" and "dead": what went wrong (kept in the history)
--
-- "release" hands an unfinished job back (graceful shutdown): it goes to the
-- head of its tenant's queue and the attempt does not count.
--
-- Returns one status per job: "done", "scheduled", "dead", "released", "stale".
local out = {}
local woke = false
local n = (#ARGV - H) / 5
local ids = {}
for i = 0, n - 1 do ids[#ids + 1] = ARGV[H + i * 5 + 1] end
local recs = get_jobs(ids, { 'lease', 'state', 'tenant' })
local seen = {}          -- an id settled twice in one batch: the second is stale
local settled = {}       -- ids whose lease ends here
local finished = {}      -- score, id pairs for the finished set
local freed = {}         -- tenant -> slots freed
local freed_order = {}
local requeued = {}      -- tenants that got a job back
local completed, retried = 0, 0
local expires = int(NOW + DONE_TTL_MS)
for i = 0, n - 1 do
  local b = H + i * 5
  local id, token, outcome = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local rec = recs[i + 1]
  if seen[id] or not lease_holds(rec, token) then
    out[#out + 1] = 'stale'
  else
    seen[id] = true
    local t = rec.tenant
    settled[#settled + 1] = id
    if not freed[t] then
      freed[t] = 0
      freed_order[#freed_order + 1] = t
    end
    freed[t] = freed[t] + 1
    if outcome == 'done' then
      set(id, 'state', 'done')
      set(id, 'finished_at', NOW_S)
      finished[#finished + 1] = expires
      finished[#finished + 1] = id
      completed = completed + 1
      out[#out + 1] = 'done'
    else
      local attempts = redis.call('HGET', field_key('attempts'), id)
      if outcome == 'retry' then
        local delay, err = tonumber(ARGV[b + 4]) or 0, ARGV[b + 5]
        append_history(id, attempts, err)
        set(id, 'state', 'retrying')
        set(id, 'run_at', int(NOW + delay))
        redis.call('ZADD', SCHEDULED, int(NOW + delay), id)
        retried = retried + 1
        out[#out + 1] = 'scheduled'
      elseif outcome == 'dead' then
        append_history(id, attempts, ARGV[b + 5])
        bury(id, ARGV[b + 5])
        out[#out + 1] = 'dead'
      else
        set(id, 'attempts', int((tonumber(attempts) or 1) - 1))
        -- Back at the head of its tenant's queue; release_slots() below makes
        -- the tenant claimable once its in-flight count is right.
        redis.call('LPUSH', tq_key(t), id)
        redis.call('ZADD', PENDING, NOW_S, id)
        set(id, 'state', 'pending')
        set(id, 'ready_at', NOW_S)
        requeued[t] = true
        woke = true
        out[#out + 1] = 'released'
      end
    end
  end
end
if #settled > 0 then
  redis.call('ZREM', LEASES, unpack(settled))
  for _, t in ipairs(freed_order) do
    release_slots(t, freed[t], requeued[t] == true)
  end
  if #finished > 0 then redis.call('ZADD', FINISHED, unpack(finished)) end
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
