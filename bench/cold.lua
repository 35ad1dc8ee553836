-- Cold feed renders: every request names a feed view never asked for before, yet showing
-- the same 50 newest items as /feed.rss. `to` (the latest publication, inclusive) is set
-- far in the future and moved by one microsecond per request, so it filters out nothing
-- while each URL is its own cache key in feedsvc (and the SQL stays an index range on
-- pub_us, the plan of the plain feed).
--
--   wrk -t1 -c16 -d10s --latency -s bench/cold.lua http://127.0.0.1:PORT -- OFFSET
--
-- OFFSET (microseconds) keeps the URLs of one run apart from those of earlier runs.

local counter = 0
local offset = 0

function init(args)
  offset = tonumber(args[1]) or 0
end

function request()
  counter = counter + 1
  local n = offset + counter
  local seconds = math.floor(n / 1000000)
  local micros = n % 1000000
  local path = string.format(
    "/feed.rss?to=2100-01-01T%02d:%02d:%02d.%06dZ",
    math.floor(seconds / 3600) % 24, math.floor(seconds / 60) % 60, seconds % 60, micros
  )
  return wrk.format("GET", path)
end
