-- enqueue.lua: adds a batch of jobs in one atomic call.
--
-- ARGV[H+1 ..]  groups of 8 per job:
--   id          a fresh ULID
--   tenant      a validated tenant id
--   payload     the job's JSON
--   max_attempts
--   run_at      ms since the epoch; 0 for none
--   delay_ms    ms after now; 0 for none (the job runs at the later of the two)
--   idem_key    "" for none
--   payload_hash  hex digest of the payload, compared on an idempotent replay
-- ARGV[H+1+8n]  idempotency TTL in ms (one for the whole batch; last argument)
--
-- Returns a flat array, two entries per job: status, id. Status is
--   "new"       enqueued; id is the given id
--   "dup"       same tenant + key + payload seen within the TTL; id is the first job's
--   "conflict"  same tenant + key, different payload; nothing enqueued; id is the first job's
local IDEM_TTL_MS = tonumber(ARGV[#ARGV])
local n = (#ARGV - H - 1) / 8
local out = {}
-- Claimable jobs are gathered per tenant and pushed with one call each, and
-- each job field is written for the whole batch with one call, so a batch
-- costs a few calls per tenant and per field, not per job.
local by_tenant, tenants = {}, {}
local tenant_kv, attempts_kv, max_kv, enqueued_kv, payloads, state_kv = {}, {}, {}, {}, {}, {}
local added = 0
for i = 0, n - 1 do
  local b = H + i * 8
  local id, t, payload = ARGV[b + 1], ARGV[b + 2], ARGV[b + 3]
  local max_attempts, run_at = ARGV[b + 4], tonumber(ARGV[b + 5])
  local delayed = NOW + tonumber(ARGV[b + 6])
  if delayed > run_at then run_at = delayed end
  local idem, phash = ARGV[b + 7], ARGV[b + 8]
  local status = 'new'
  if idem ~= '' then
    local ik = P .. 'idem:' .. t .. ':' .. idem
    local prev = redis.call('GET', ik)
    if prev then
      local sep = string.find(prev, ':', 1, true)
      local first_id, first_hash = string.sub(prev, 1, sep - 1), string.sub(prev, sep + 1)
      if first_hash == phash then status = 'dup' else status = 'conflict' end
      id = first_id
    else
      redis.call('SET', ik, id .. ':' .. phash, 'PX', IDEM_TTL_MS)
    end
  end
  if status == 'new' then
    local m = #tenant_kv + 2
    tenant_kv[m - 1], tenant_kv[m] = id, t
    attempts_kv[m - 1], attempts_kv[m] = id, '0'
    max_kv[m - 1], max_kv[m] = id, max_attempts
    enqueued_kv[m - 1], enqueued_kv[m] = id, NOW_S
    payloads[m - 1], payloads[m] = id, payload
    if idem ~= '' then set(id, 'idem', idem) end
    if run_at > NOW then
      set(id, 'state', 'scheduled')
      set(id, 'run_at', int(run_at))
      redis.call('ZADD', SCHEDULED, int(run_at), id)
    else
      state_kv[#state_kv + 1] = id
      state_kv[#state_kv + 1] = 'pending'
      if not by_tenant[t] then
        by_tenant[t] = {}
        tenants[#tenants + 1] = t
      end
      local ids = by_tenant[t]
      ids[#ids + 1] = id
      PENDING_DELTA = PENDING_DELTA + 1
    end
    added = added + 1
  end
  out[#out + 1] = status
  out[#out + 1] = id
end
if #tenant_kv > 0 then
  redis.call('HSET', field_key('tenant'), unpack(tenant_kv))
  redis.call('HSET', field_key('attempts'), unpack(attempts_kv))
  redis.call('HSET', field_key('max_attempts'), unpack(max_kv))
  redis.call('HSET', field_key('enqueued_at'), unpack(enqueued_kv))
  redis.call('HSET', PAYLOADS, unpack(payloads))
end
-- Read before flush_jobs() writes the count and resets it.
local claimable = PENDING_DELTA
if #state_kv > 0 then
  -- Claimable jobs became ready when they were enqueued: `ready_at` is left
  -- unset, which means exactly that (see prelude.lua), and spares every
  -- claim a lookup in a hash the size of the queue.
  redis.call('HSET', field_key('state'), unpack(state_kv))
end
flush_jobs()
for _, t in ipairs(tenants) do
  redis.call('RPUSH', tq_key(t), unpack(by_tenant[t]))
  activate(t)
end
if claimable > 0 then redis.call('PUBLISH', WAKE, 'enqueue') end
if added > 0 then redis.call('HINCRBY', META, 'enqueued', added) end
return out
