-- W1 (miss): unique URLs rotating the five corpus JPEGs, w = 300..1099,
-- q=80&fm=jpg, so no request can hit a cache within a run.
--
-- URL number i asks for image i % 5 at width 300 + ((i / 5) * 493) % 800:
-- the image and the width are independent (5 divides 800, so i % 5 and
-- i % 800 together gave only 800 distinct URLs), any 4000 consecutive
-- numbers are the 4000 distinct (image, width) pairs, and the stride 493
-- (prime to 800) spreads the widths of any short run of numbers over the
-- whole range instead of walking them upwards one by one, so a workload
-- given a slice of the numbers renders a fair mix of sizes.
--
-- `wrk ... -s bench/w1.lua URL -- OFFSET`: the first URL number (thread t
-- of several starts at OFFSET + 1000 t). Counts the responses a cache
-- answered (`X-Imgmesh-Cache` other than `miss`) and prints `hits N` at
-- the end: a valid W1 run has 0.
local images = { "2004default.jpg", "firstgeneration.jpg", "rhythm.jpg", "string.jpg", "the-mouse.jpg" }
local threads = {}
local counter = 0
hits = 0

function setup(thread)
  thread:set("thread_index", #threads)
  table.insert(threads, thread)
end

function init(args)
  wrk.headers["Host"] = "demo.localhost"
  counter = tonumber(args[1] or "0") + 1000 * (thread_index or 0)
end

function request()
  local i = counter
  counter = counter + 1
  local w = 300 + (math.floor(i / 5) * 493) % 800
  local path = "/" .. images[(i % 5) + 1] .. "?w=" .. w .. "&q=80&fm=jpg"
  return wrk.format("GET", path)
end

function response(status, headers, body)
  local cache = headers["X-Imgmesh-Cache"] or headers["x-imgmesh-cache"]
  if cache ~= nil and cache ~= "miss" then
    hits = hits + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + (thread:get("hits") or 0)
  end
  io.write(string.format("hits %d\n", total))
end
