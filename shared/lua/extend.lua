-- extend.lua: the running worker's heartbeat; pushes back the lease deadline
-- of each job it still holds.
--
-- ARGV[H+1 ..]  pairs: id, token
--
-- Returns one integer per job: 1 extended, 0 the lease is no longer ours
-- (expired and reaped, or settled) and the job's outcome will be "stale".
local out = {}
local ids, tokens = {}, {}
for i = H + 1, #ARGV, 2 do
  ids[#ids + 1] = ARGV[i]
  tokens[#tokens + 1] = ARGV[i + 1]
end
local recs = get_jobs(ids, { 'state', 'lease' })
local deadline = int(NOW + LEASE_MS)
local leases = {}
for i, id in ipairs(ids) do
  local rec = recs[i]
  if lease_holds(rec.state, rec.lease, tokens[i]) then
    leases[#leases + 1] = deadline
    leases[#leases + 1] = id
    out[i] = 1
  else
    out[i] = 0
  end
end
if #leases > 0 then redis.call('ZADD', LEASES, 'XX', unpack(leases)) end
return out
