-- claim.lua: leases up to N jobs, fairly across tenants, in one call.
--
-- Weighted fair queuing: the claimable tenant with the smallest virtual time
-- is served and its virtual time advances by 1/weight; the queue's clock
-- follows the served tenant. A tenant at its in-flight cap is parked in
-- `blocked` until one of its jobs settles.
--
-- The schedule is computed in Lua over the tenants at the front of `ready`,
-- and Redis is then touched once per tenant served (one LPOP of all its jobs)
-- and once per batch (the job fields, leases, ready), not once per
-- job: a script's cost grows with its calls, so batching them is what makes
-- the queue fast.
--
-- Due scheduled jobs are promoted and expired leases reaped first, in small
-- bounded batches, so a claim always sees current work.
--
-- ARGV[H+1]  worker name (recorded on the job, shown when its lease expires)
-- ARGV[H+2]  N, the most jobs to lease (at most 1000)
-- ARGV[H+3]  most scheduled jobs to promote and expired leases to reap
--
-- Returns { now_ms, next_due_ms (-1 if nothing is due later), then 8 entries per job:
--   id, tenant, payload, attempt, max_attempts, token, enqueued_at, ready_at }
local worker, want, upkeep = ARGV[H + 1], tonumber(ARGV[H + 2]), tonumber(ARGV[H + 3])
if want > 1000 then want = 1000 end
promote(upkeep)
reap(upkeep)
-- The claim below reads records from Redis: write the promoted and reaped ones first.
flush_jobs()

local out = { NOW, -1 }
local clock = nil
local order = {}   -- tenants in the order served, one entry per job
local state = {}   -- tenant -> { weight, cap, inflight, vtime, len, taken, parked }

while #order < want do
  local room = want - #order
  local top = redis.call('ZRANGE', READY, 0, room - 1, 'WITHSCORES')
  if not top[1] then break end
  -- Tenants beyond the ones fetched have a virtual time >= the last one
  -- fetched; while the served tenant's time stays within that bound the
  -- schedule is exact.
  local bound = math.huge
  if #top / 2 == room then bound = tonumber(top[#top]) end
  local candidates = {}
  for i = 1, #top, 2 do
    local t = top[i]
    local s = state[t]
    if s then
      -- Served in an earlier round: keep what it has been given so far.
      s.vtime = tonumber(top[i + 1])
    else
      local v = redis.call('HMGET', tenant_key(t), 'weight', 'cap', 'inflight')
      local weight = tonumber(v[1]) or 1
      if weight <= 0 then weight = 1 end
      state[t] = { weight = weight, cap = tonumber(v[2]) or 0, inflight = tonumber(v[3]) or 0,
        vtime = tonumber(top[i + 1]), len = redis.call('LLEN', tq_key(t)), taken = 0 }
    end
    candidates[#candidates + 1] = t
  end
  local served = 0
  local single = #candidates == 1 and bound == math.huge
  if single then
    -- The only claimable tenant (a common case: one busy tenant) is served
    -- all it can give, without the per-job search below; the same virtual
    -- time arithmetic, so the schedule is identical.
    local t = candidates[1]
    local s = state[t]
    local k = math.min(want - #order, s.len - s.taken)
    if s.cap > 0 then k = math.min(k, s.cap - s.inflight - s.taken) end
    local v, step, n0 = s.vtime, 1 / s.weight, #order
    for j = 1, k do
      clock = v
      v = v + step
      order[n0 + j] = t
    end
    if k > 0 then
      s.vtime = v
      s.taken = s.taken + k
      served = k
    end
  end
  while not single and #order < want do
    local best, best_t = nil, nil
    for _, t in ipairs(candidates) do
      local s = state[t]
      local open = s.taken < s.len and (s.cap <= 0 or s.inflight + s.taken < s.cap)
      if open and (best == nil or s.vtime < best.vtime) then best, best_t = s, t end
    end
    if best == nil or best.vtime > bound then break end
    clock = best.vtime
    best.taken = best.taken + 1
    best.vtime = best.vtime + 1 / best.weight
    order[#order + 1] = best_t
    served = served + 1
  end
  -- Write the tenants back: still claimable, out of work, or at their cap.
  local readd, drop = {}, {}
  for _, t in ipairs(candidates) do
    local s = state[t]
    if s.taken >= s.len then
      drop[#drop + 1] = t
      redis.call('HSET', tenant_key(t), 'vtime', fmt(s.vtime))
    elseif s.cap > 0 and s.inflight + s.taken >= s.cap then
      drop[#drop + 1] = t
      redis.call('SADD', BLOCKED, t)
      redis.call('HSET', tenant_key(t), 'vtime', fmt(s.vtime))
    elseif s.taken > 0 then
      readd[#readd + 1] = fmt(s.vtime)
      readd[#readd + 1] = t
    end
  end
  if #drop > 0 then redis.call('ZREM', READY, unpack(drop)) end
  if #readd > 0 then redis.call('ZADD', READY, unpack(readd)) end
  -- Guard against an empty round (every fetched tenant was exhausted or capped
  -- without serving): the next round sees `ready` without them.
  if served == 0 and #drop == 0 then break end
end

-- Pop each served tenant's jobs in one call and count them in flight.
local popped = {}
for t, s in pairs(state) do
  if s.taken > 0 then
    local ids = redis.call('LPOP', tq_key(t), s.taken) or {}
    popped[t] = { ids = ids, next = 1 }
    PENDING_DELTA = PENDING_DELTA - #ids
    redis.call('HINCRBY', tenant_key(t), 'inflight', s.taken)
  end
end

local n = #order
if n > 0 then
  local last_token = redis.call('HINCRBY', META, 'token', n)
  local deadline = int(NOW + LEASE_MS)
  local ids = {}
  for i, t in ipairs(order) do
    local p = popped[t]
    ids[i] = p.ids[p.next] or false
    p.next = p.next + 1
  end
  local present, np = {}, 0
  for _, id in ipairs(ids) do
    if id then
      np = np + 1
      present[np] = id
    end
  end
  -- The records as plain arrays, one call per field (no table per job).
  local attempts, maxes, enqueued, ready, payloads = {}, {}, {}, {}, {}
  if np > 0 then
    attempts = redis.call('HMGET', field_key('attempts'), unpack(present))
    maxes = redis.call('HMGET', field_key('max_attempts'), unpack(present))
    enqueued = redis.call('HMGET', field_key('enqueued_at'), unpack(present))
    ready = redis.call('HMGET', field_key('ready_at'), unpack(present))
    payloads = redis.call('HMGET', PAYLOADS, unpack(present))
  end
  local states, attempts_kv, lease_kv, leases, claimed = {}, {}, {}, {}, {}
  local lease_tail = ':' .. NOW_S .. ':' .. worker
  local k, c, o = 0, 0, #out
  for i, t in ipairs(order) do
    local id = ids[i]
    local payload, enq = false, false
    if id then
      k = k + 1
      payload, enq = payloads[k], enqueued[k]
    end
    if not (payload and enq) then
      -- The job is gone (purged by hand): its slot goes back.
      release_slot(t)
    else
      local done_before = attempts[k]
      -- Most jobs are on their first attempt: spare the number formatting.
      local attempt, attempt_s = 1, '1'
      if done_before and done_before ~= '0' then
        attempt = (tonumber(done_before) or 0) + 1
        attempt_s = int(attempt)
      end
      local token = last_token - n + i
      c = c + 1
      claimed[c] = id
      local m = c * 2
      states[m - 1], states[m] = id, 'running'
      attempts_kv[m - 1], attempts_kv[m] = id, attempt_s
      lease_kv[m - 1], lease_kv[m] = id, int(token) .. lease_tail
      leases[m - 1], leases[m] = deadline, id
      out[o + 1] = id
      out[o + 2] = t
      out[o + 3] = payload
      out[o + 4] = attempt
      out[o + 5] = maxes[k] or '1'
      out[o + 6] = token
      out[o + 7] = enq
      out[o + 8] = ready[k] or enq
      o = o + 8
    end
  end
  if #claimed > 0 then
    redis.call('HSET', field_key('state'), unpack(states))
    redis.call('HSET', field_key('attempts'), unpack(attempts_kv))
    redis.call('HSET', field_key('lease'), unpack(lease_kv))
    leases[#leases + 1] = '+inf'
    leases[#leases + 1] = LEASES_PIN
    redis.call('ZADD', LEASES, unpack(leases))
  end
end
if clock then redis.call('HSET', META, 'clock', fmt(clock)) end
flush_jobs()
out[2] = next_due()
return out
