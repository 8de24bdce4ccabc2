-- Bad bytes at load: `wrk ... -s bench/badbytes.lua <host> -- mixed` sends
-- the hostile originals of write-hostile-originals in turn with good
-- renders of the corpus between them (each URL unique, so every good one
-- is a render); `-- bomb` sends only the 50000 × 50000 PNG. Statuses are
-- counted by class (503, the renderer shedding a miss it has no place
-- for, apart from other 5xx) and printed when the run ends.
local bad = { "bomb.png", "frames.gif", "scans.jpg", "ztxt-bomb.png", "iccp-bomb.png", "truncated.jpg" }
local good = { "2004default.jpg", "firstgeneration.jpg", "rhythm.jpg", "string.jpg", "the-mouse.jpg" }
local threads = {}
local mode = "mixed"
local counter = 0
ok, too_large, other_4xx, shed, server_error = 0, 0, 0, 0, 0

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  wrk.headers["Host"] = "demo.localhost"
  mode = args[1] or "mixed"
end

function request()
  local i = counter
  counter = counter + 1
  local width = 100 + (i % 900)
  if mode == "bomb" then
    return wrk.format("GET", "/bomb.png?w=" .. width)
  end
  -- Every other request is a good render.
  if i % 2 == 0 then
    return wrk.format("GET", "/" .. good[math.floor(i / 2) % #good + 1] .. "?w=" .. width .. "&q=80&fm=jpg")
  end
  return wrk.format("GET", "/" .. bad[math.floor((i - 1) / 2) % #bad + 1] .. "?w=" .. width)
end

function response(status)
  if status < 300 then
    ok = ok + 1
  elseif status == 413 then
    too_large = too_large + 1
  elseif status < 500 then
    other_4xx = other_4xx + 1
  elseif status == 503 then
    shed = shed + 1
  else
    server_error = server_error + 1
  end
end

function done()
  local sum = { ok = 0, too_large = 0, other_4xx = 0, shed = 0, server_error = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(sum) do
      sum[name] = sum[name] + thread:get(name)
    end
  end
  io.write(string.format("statuses 2xx=%d 413=%d other4xx=%d 503=%d other5xx=%d\n", sum.ok, sum.too_large, sum.other_4xx, sum.shed, sum.server_error))
end
