-- W1 (miss): unique URLs rotating the five corpus JPEGs, w = 300..1099,
-- so no request can hit a cache within a run.
local images = { "2004default.jpg", "firstgeneration.jpg", "rhythm.jpg", "string.jpg", "the-mouse.jpg" }
local counter = 0

function init(args)
  wrk.headers["Host"] = "demo.localhost"
  -- Each wrk thread starts at its own offset.
  counter = tonumber(args[1] or "0")
end

function request()
  local i = counter
  counter = counter + 1
  local path = "/" .. images[(i % 5) + 1] .. "?w=" .. (300 + (i % 800)) .. "&q=80&fm=jpg"
  return wrk.format("GET", path)
end
