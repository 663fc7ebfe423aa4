-- wrk script of `make bench-serve` (driven by cmd/bench-serve): every
-- request POSTs the same JSON body, read once per wrk thread from the file
-- named by the first script argument:
--
--   wrk -t2 -c8 -d10s --latency -s scripts/bench_serve_wrk.lua <url> -- <body.json>
--
-- The request is built once in init (no request() function), so wrk sends
-- a static request and spends no Lua time per request.

function init(args)
  local path = args[1]
  if path == nil then
    error("bench_serve_wrk.lua: pass the body file after --")
  end
  local f = assert(io.open(path, "rb"))
  local body = f:read("*a")
  f:close()
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
end
