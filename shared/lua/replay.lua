-- replay.lua: sends dead jobs back to their tenants' queues with a fresh
-- attempt budget; their error history is kept.
--
-- ARGV[H+1]  "ids" or "walk"
-- "ids":   ARGV[H+2 ..] job ids. Returns one status per id: "replayed" or "missing".
-- "walk":  ARGV[H+2] tenant ("" for all), ARGV[H+3] max dead_at (ms; jobs that die
--          again during a long replay are not picked up twice), ARGV[H+4] cursor
--          score, ARGV[H+5] cursor skip, ARGV[H+6] batch size.
--          Returns { replayed, next_score, next_skip, done }.
local function replay(id)
  if redis.call('ZREM', DEAD, id) == 0 then return 'missing' end
  local rec = get_job(id, { 'tenant', 'replays' })
  if not rec.tenant then return 'missing' end
  set(id, 'finished_at', false)
  set(id, 'run_at', false)
  set(id, 'attempts', '0')
  set(id, 'replayed_at', NOW_S)
  set(id, 'replays', int((tonumber(rec.replays) or 0) + 1))
  make_pending(id, rec.tenant, false)
  return 'replayed'
end

local out
if ARGV[H + 1] == 'ids' then
  out = {}
  for i = H + 2, #ARGV do out[#out + 1] = replay(ARGV[i]) end
else
  local visited, score, skip, done = walk_dead(ARGV[H + 2], ARGV[H + 3], ARGV[H + 4],
    ARGV[H + 5], tonumber(ARGV[H + 6]), replay)
  out = { visited, score, skip, done }
end
flush_jobs()
redis.call('PUBLISH', WAKE, 'replay')
return out
