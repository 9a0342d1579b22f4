-- purge.lua: deletes dead jobs for good.
--
-- ARGV[H+1]  "ids" or "walk"
-- "ids":   ARGV[H+2 ..] job ids. Returns one status per id: "purged" or "missing".
-- "walk":  ARGV[H+2] tenant ("" for all), ARGV[H+3] max dead_at (ms; e.g. now - age
--          to purge only older jobs), ARGV[H+4] cursor score, ARGV[H+5] cursor skip,
--          ARGV[H+6] batch size. Returns { purged, next_score, next_skip, done }.
local function purge(id)
  if redis.call('ZREM', DEAD, id) == 0 then return 'missing' end
  forget({ id })
  return 'purged'
end

if ARGV[H + 1] == 'ids' then
  local out = {}
  for i = H + 2, #ARGV do out[#out + 1] = purge(ARGV[i]) end
  return out
end
local visited, score, skip, done = walk_dead(ARGV[H + 2], ARGV[H + 3], ARGV[H + 4],
  ARGV[H + 5], tonumber(ARGV[H + 6]), purge)
return { visited, score, skip, done }
