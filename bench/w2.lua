-- W2 (hit): the same ten URLs over and over after warm-up.
local images = { "2004default.jpg", "firstgeneration.jpg", "rhythm.jpg", "string.jpg", "the-mouse.jpg" }
local paths = {}
for i, image in ipairs(images) do
  paths[#paths + 1] = "/" .. image .. "?w=400&q=80&fm=jpg"
  paths[#paths + 1] = "/" .. image .. "?w=640&q=80&fm=jpg"
end
local counter = 0

function init(args)
  wrk.headers["Host"] = "demo.localhost"
end

function request()
  counter = counter + 1
  return wrk.format("GET", paths[(counter % #paths) + 1])
end
