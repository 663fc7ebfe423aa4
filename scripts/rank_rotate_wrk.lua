-- wrk script for /rank on real intents (docs/serving.md, "End to end on
-- Seal-Tools"): each request POSTs the next line of a file of JSON bodies,
-- one per line, cycling; each wrk thread keeps its own position, so use -t1
-- for one pass over the file.
--
--   wrk -t1 -c1 -d6s --latency -s scripts/rank_rotate_wrk.lua http://127.0.0.1:8089/rank -- bodies.txt
local bodies = {}
local i = 0
function init(args)
  for line in io.lines(args[1]) do bodies[#bodies + 1] = line end
  if #bodies == 0 then error("rank_rotate_wrk.lua: pass a file of JSON bodies after --") end
end
function request()
  i = i % #bodies + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[i])
end
