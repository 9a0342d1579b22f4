-- prelude.lua: helpers shared by every Flotilla queue script.
--
-- Each operation file in this folder is appended to this text at compile time
-- (see shared/src/queue/scripts.rs), so these helpers are locals of one script and
-- every state change stays a single atomic EVALSHA.
--
-- Every script is called with the same header:
--   KEYS[1]  {ns:queue}:meta        (routes the call to the queue's slot)
--   ARGV[1]  key prefix "{ns:queue}:"; every key below is this prefix + a suffix,
--            so all of a queue's keys share one hash tag (one Redis Cluster slot)
--   ARGV[2]  now in ms, or "" to use the Redis server's clock (one clock for the
--            whole fleet; tests pass a manual time)
--   ARGV[3]  lease length in ms
--   ARGV[4]  how long finished jobs are kept, in ms
--   ARGV[5]  dead letter: maximum number of jobs kept
--   ARGV[6]  dead letter: maximum age in ms
-- Operation arguments start at ARGV[7] (index H + 1).

local H = 6
local P = ARGV[1]
-- NOW_S is NOW as text: Lua turns a number argument of redis.call into text
-- with a floating-point printf, which is a measurable share of a claim's cost
-- when done for every job; integer text is built once here instead.
local NOW, NOW_S
if ARGV[2] ~= '' then
  NOW_S = ARGV[2]
  NOW = tonumber(NOW_S)
else
  local t = redis.call('TIME')
  NOW_S = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
  NOW = tonumber(NOW_S)
end
local function int(x) return string.format('%d', x) end
local LEASE_MS = tonumber(ARGV[3])
local DONE_TTL_MS = tonumber(ARGV[4])
local DEAD_MAX = tonumber(ARGV[5])
local DEAD_TTL_MS = tonumber(ARGV[6])

local META = P .. 'meta'
local READY = P .. 'ready'
local BLOCKED = P .. 'blocked'
local LEASES = P .. 'leases'
-- A member of `leases` that is not a job, at +inf so it is never due. Its
-- name, over the 64 bytes of zset-max-listpack-value, makes Redis create
-- `leases` as a skiplist and, since it keeps the set from ever emptying,
-- keep it one: a listpack of ~100 leases (the usual size) costs about twice
-- as much per claim and settle, and would flip encodings as the set grows
-- and empties. Readers skip it (`QueueKeys::LEASES_PIN`).
local LEASES_PIN = '~pin: not a job; keeps this sorted set a skiplist, which is faster at this size~'
local SCHEDULED = P .. 'scheduled'
local DEAD = P .. 'dead'
local WAKE = P .. 'wake'
-- A job's fields live in one hash per field, shared by the whole queue and
-- keyed by job id ({ns:queue}:job:state, :job:attempts, ...), plus its payload
-- and error history. A batch of jobs is then read and written with one call
-- per field, whatever its size, and no script decodes or encodes JSON on the
-- hot path: a claim's cost is dominated by calls and Lua work per job, and
-- this layout keeps both to a minimum. All values are text. `ready_at` is
-- set only when a job became claimable later than it was enqueued (delayed,
-- retried, handed back); unset, it is `enqueued_at`.
local FIELDS = { 'tenant', 'state', 'attempts', 'max_attempts', 'enqueued_at', 'ready_at', 'run_at',
  'lease', 'finished_at', 'last_error', 'idem', 'replays', 'replayed_at' }
local function field_key(f) return P .. 'job:' .. f end

-- A job's latest lease is one field, "<token>:<started_at>:<worker>", written
-- once per claim: the fencing token, when the attempt started and who runs it.
-- It stays after the attempt ends; only a job in state "running" holds it.
-- Whether a job in `state` with lease `lease` runs under `token`: the lease
-- starts with the token and ':' (58), compared without building strings.
local function lease_holds(state, lease, token)
  local tl = #token
  return state == 'running' and lease and string.byte(lease, tl + 1) == 58
    and string.sub(lease, 1, tl) == token
end

local function lease_worker(lease)
  if not lease then return '?' end
  local _, _, worker = string.find(lease, '^[^:]*:[^:]*:(.*)$')
  return worker or '?'
end
local PAYLOADS = P .. 'payloads'
local HISTORY = P .. 'history'
-- Done jobs by the time their fields may be deleted: a list with one entry
-- per settle, "<expires ms> <id> <id> ...", oldest first. One RPUSH per
-- settle costs Redis far less than a sorted-set insert per job, and settles
-- come in time order, so the head is always the next to expire.
local DONE_BATCHES = P .. 'done_batches'

-- The error history kept on a job; older entries are dropped so a job that
-- fails forever still has a bounded history.
local HISTORY_MAX = 20

-- Reads `fields` of the jobs `ids`, one call per field. Returns one table per
-- id with the fields that are set.
local function get_jobs(ids, fields)
  local recs = {}
  for i = 1, #ids do recs[i] = {} end
  if #ids == 0 then return recs end
  for _, f in ipairs(fields) do
    local vals = redis.call('HMGET', field_key(f), unpack(ids))
    for i = 1, #ids do
      if vals[i] then recs[i][f] = vals[i] end
    end
  end
  return recs
end

local function get_job(id, fields)
  return get_jobs({ id }, fields)[1]
end

-- Field writes are buffered and flushed with one call per field. A script
-- must call flush_jobs() before reading fields it may have written.
local DIRTY = {}
-- Claimable jobs are counted, not indexed: `meta.pending` is the number of
-- ids on the tenants' queues. A sorted set of them (for the count and the
-- oldest) cost every claim a removal per job; the oldest is read from the
-- queues' heads instead (depth.lua). Scripts add what they push and take
-- what they pop, and flush_jobs() writes the sum with one call.
local PENDING_DELTA = 0
local function set(id, f, value)
  local d = DIRTY[f]
  if not d then
    d = {}
    DIRTY[f] = d
  end
  d[id] = value or false
end

local function flush_jobs()
  for f, d in pairs(DIRTY) do
    local put, del = {}, {}
    for id, v in pairs(d) do
      if v then
        put[#put + 1] = id
        put[#put + 1] = v
      else
        del[#del + 1] = id
      end
    end
    if #put > 0 then redis.call('HSET', field_key(f), unpack(put)) end
    if #del > 0 then redis.call('HDEL', field_key(f), unpack(del)) end
  end
  DIRTY = {}
  if PENDING_DELTA ~= 0 then
    redis.call('HINCRBY', META, 'pending', PENDING_DELTA)
    PENDING_DELTA = 0
  end
end

-- Deletes jobs for good (every field, payload, history).
local function forget(ids)
  if #ids == 0 then return end
  for _, d in pairs(DIRTY) do
    for _, id in ipairs(ids) do d[id] = nil end
  end
  for _, f in ipairs(FIELDS) do redis.call('HDEL', field_key(f), unpack(ids)) end
  redis.call('HDEL', PAYLOADS, unpack(ids))
  redis.call('HDEL', HISTORY, unpack(ids))
end

local function tq_key(t) return P .. 'tq:' .. t end
local function tenant_key(t) return P .. 'tenant:' .. t end

-- Scores are doubles; %.17g keeps a virtual time exact when it is parked in a hash.
local function fmt(x) return string.format('%.17g', x) end

local function tenant_policy(t)
  local v = redis.call('HMGET', tenant_key(t), 'weight', 'cap', 'inflight', 'vtime')
  local weight = tonumber(v[1]) or 1
  if weight <= 0 then weight = 1 end
  return weight, tonumber(v[2]) or 0, tonumber(v[3]) or 0, tonumber(v[4]) or 0
end

-- Set when a script made a tenant claimable, so it can wake idle workers.
local ACTIVATED = false

-- Makes a tenant with pending work claimable. A tenant that was idle (or
-- capped) starts at the queue's virtual clock, so idleness buys no burst.
local function activate(t)
  if redis.call('ZSCORE', READY, t) then return end
  if redis.call('SISMEMBER', BLOCKED, t) == 1 then return end
  local _, cap, inflight, vtime = tenant_policy(t)
  if cap > 0 and inflight >= cap then
    redis.call('SADD', BLOCKED, t)
    return
  end
  local clock = tonumber(redis.call('HGET', META, 'clock')) or 0
  if vtime < clock then vtime = clock end
  redis.call('ZADD', READY, vtime, t)
  ACTIVATED = true
end

-- Whether any tenant is parked at its cap; read once per script, since most
-- queues have none and the check would otherwise cost a call per settle.
local BLOCKED_ANY = nil

-- Frees `k` of the tenant's in-flight slots. A tenant parked at its cap with
-- work left becomes claimable again; with `has_work` (a job was just put
-- back on its queue) so does a tenant that had run out of work.
local function release_slots(t, k, has_work)
  local inflight = redis.call('HINCRBY', tenant_key(t), 'inflight', -k)
  if inflight < 0 then
    redis.call('HSET', tenant_key(t), 'inflight', 0)
    inflight = 0
  end
  if BLOCKED_ANY == nil then BLOCKED_ANY = redis.call('SCARD', BLOCKED) > 0 end
  if BLOCKED_ANY and redis.call('SISMEMBER', BLOCKED, t) == 1 then
    local _, cap = tenant_policy(t)
    if cap == 0 or inflight < cap then
      redis.call('SREM', BLOCKED, t)
      if redis.call('LLEN', tq_key(t)) > 0 then activate(t) end
    end
  elseif has_work then
    activate(t)
  end
end

local function release_slot(t)
  release_slots(t, 1, false)
end

-- Puts a job on its tenant's queue (at the head for a job handed back, so it
-- does not lose its place) and marks it claimable.
local function make_pending(id, t, at_head)
  if at_head then
    redis.call('LPUSH', tq_key(t), id)
  else
    redis.call('RPUSH', tq_key(t), id)
  end
  PENDING_DELTA = PENDING_DELTA + 1
  set(id, 'state', 'pending')
  set(id, 'ready_at', NOW_S)
  activate(t)
end

local function append_history(id, attempt, err)
  local raw = redis.call('HGET', HISTORY, id)
  local history = {}
  if raw then history = cjson.decode(raw) end
  history[#history + 1] = { at = NOW, attempt = tonumber(attempt) or 0, error = err }
  while #history > HISTORY_MAX do table.remove(history, 1) end
  redis.call('HSET', HISTORY, id, cjson.encode(history))
  set(id, 'last_error', err)
end

-- Deletes dead jobs beyond the retention (age, then count), at most `limit`
-- per call so a script never does unbounded work.
local function trim_dead(limit)
  local old = redis.call('ZRANGEBYSCORE', DEAD, '-inf', NOW - DEAD_TTL_MS, 'LIMIT', 0, limit)
  local excess = redis.call('ZCARD', DEAD) - #old - DEAD_MAX
  if excess > 0 and #old < limit then
    if excess > limit - #old then excess = limit - #old end
    local extra = redis.call('ZRANGE', DEAD, #old, #old + excess - 1)
    for _, id in ipairs(extra) do old[#old + 1] = id end
  end
  if #old > 0 then
    redis.call('ZREM', DEAD, unpack(old))
    forget(old)
  end
  return #old
end

-- Deletes done jobs whose retention is over, a settle's batch at a time,
-- until about `limit` are deleted (a batch is never split).
local function trim_finished(limit)
  local removed = 0
  while removed < limit do
    local head = redis.call('LINDEX', DONE_BATCHES, 0)
    if not head then break end
    local sp = string.find(head, ' ', 1, true)
    local expires = sp and tonumber(string.sub(head, 1, sp - 1))
    if expires and expires > NOW then break end
    redis.call('LPOP', DONE_BATCHES)
    if sp then
      local ids = {}
      for id in string.gmatch(string.sub(head, sp + 1), '%S+') do ids[#ids + 1] = id end
      forget(ids)
      removed = removed + #ids
    end
  end
  return removed
end

local function bury(id, err)
  set(id, 'state', 'dead')
  set(id, 'finished_at', NOW_S)
  set(id, 'last_error', err)
  redis.call('ZADD', DEAD, NOW_S, id)
  redis.call('HINCRBY', META, 'dead_lettered', 1)
  trim_dead(10)
end

-- Moves due delayed and retrying jobs onto their tenants' queues, at most
-- `limit` per call.
local function promote(limit)
  local ids = redis.call('ZRANGEBYSCORE', SCHEDULED, '-inf', NOW_S, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  redis.call('ZREM', SCHEDULED, unpack(ids))
  local tenants = redis.call('HMGET', field_key('tenant'), unpack(ids))
  for i, id in ipairs(ids) do
    if tenants[i] then make_pending(id, tenants[i], false) end
  end
  return #ids
end

-- Returns jobs whose lease ran out (their worker died or stalled) to the head
-- of their tenant's queue; the attempt they used counts. At most `limit`.
local function reap(limit)
  local ids = redis.call('ZRANGEBYSCORE', LEASES, '-inf', NOW_S, 'LIMIT', 0, limit)
  if #ids == 0 then return 0 end
  redis.call('ZREM', LEASES, unpack(ids))
  local recs = get_jobs(ids, { 'tenant', 'attempts', 'max_attempts', 'lease' })
  for i, id in ipairs(ids) do
    local rec = recs[i]
    if rec.tenant then
      local attempts = tonumber(rec.attempts) or 0
      local err = 'lease expired: worker ' .. lease_worker(rec.lease) .. ' stopped extending it (crashed, killed or stalled)'
      append_history(id, attempts, err)
      redis.call('HINCRBY', META, 'lease_expired', 1)
      release_slot(rec.tenant)
      if attempts >= (tonumber(rec.max_attempts) or 1) then
        bury(id, err)
      else
        make_pending(id, rec.tenant, true)
      end
    end
  end
  return #ids
end

-- The earliest moment something becomes due without any new enqueue: a
-- scheduled job or a lease deadline. Idle workers sleep exactly until then.
local function next_due()
  local due = -1
  local s = redis.call('ZRANGE', SCHEDULED, 0, 0, 'WITHSCORES')
  if s[2] then due = tonumber(s[2]) end
  local l = redis.call('ZRANGE', LEASES, 0, 0, 'WITHSCORES')
  if l[2] and l[1] ~= LEASES_PIN and (due < 0 or tonumber(l[2]) < due) then due = tonumber(l[2]) end
  return due
end

-- Walks the dead letter oldest first, calling `visit(id)` for each job whose
-- tenant matches (`tenant` "" matches all) and whose dead_at <= `max_score`.
-- A visited job must leave the dead set. The cursor is (score, skip): the
-- score reached and how many non-matching jobs at that score were passed, so
-- a walk resumed across calls neither skips nor repeats a job even when many
-- share one millisecond. At most `batch` jobs are examined per call.
-- Returns visited, next_score, next_skip, done (1 when the walk is complete).
local function walk_dead(tenant, max_score, cursor_score, cursor_skip, batch, visit)
  local items = redis.call('ZRANGEBYSCORE', DEAD, cursor_score, max_score, 'WITHSCORES',
    'LIMIT', cursor_skip, batch)
  local visited = 0
  local last_score, skip = tonumber(cursor_score) or 0, tonumber(cursor_skip)
  for i = 1, #items, 2 do
    local id, score = items[i], tonumber(items[i + 1])
    if score ~= last_score then
      last_score = score
      skip = 0
    end
    local matches = tenant == '' or redis.call('HGET', field_key('tenant'), id) == tenant
    if matches then
      visit(id)
      visited = visited + 1
    else
      skip = skip + 1
    end
  end
  local done = 0
  if #items < 2 * batch then done = 1 end
  return visited, fmt(last_score), skip, done
end

-- ---------------------------------------------------------------- operation
