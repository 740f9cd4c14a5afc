-- wrk script for the API scenarios. Arguments (after `--`):
--   MODE FILE KEY
-- MODE: refund | hot | fetch | healthz. FILE: lines "SALE_ID LINE_ID". KEY: the API key.
-- refund: each request refunds 1 unit of the next target; wrk's threads take turns
--         through the list, so no two requests touch the same sale.
-- hot:    refunds 1 unit of one of the (few) targets, in turn: contention on purpose.
-- fetch:  GET /api/v2/sales/{id}/, spread over the targets.
-- At the end prints one line: "WRK requests=N seconds=S s2xx=.. s4xx=.. s5xx=.. other=..
-- sockerr=.. p50_ms=.. p99_ms=..", read by bench/__main__.py.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  mode, file, key = args[1], args[2], args[3]
  nthreads = tonumber(args[4] or "2")
  targets = {}
  if file ~= "-" then
    for line in io.lines(file) do
      local s, l = line:match("(%d+)%s+(%d+)")
      if s then targets[#targets + 1] = { s, l } end
    end
  end
  counter = tid
  s2xx, s4xx, s5xx, other = 0, 0, 0, 0
  headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
    ["X-Forwarded-Proto"] = "https",
  }
end

function request()
  if mode == "healthz" then
    return wrk.format("GET", "/healthz")
  end
  local t = targets[counter % #targets + 1]
  if mode == "hot" then
    counter = counter + 1
  else
    counter = counter + nthreads
  end
  if mode == "fetch" then
    return wrk.format("GET", "/api/v2/sales/" .. t[1] .. "/", headers)
  end
  local body = '{"items":[{"item_id":' .. t[2] .. ',"quantity":1}],'
    .. '"online":false,"alert_customer":true,"reason":"damaged"}'
  return wrk.format("POST", "/api/v2/sales/" .. t[1] .. "/refunds/", headers, body)
end

function response(status, headers, body)
  if status >= 200 and status < 300 then
    s2xx = s2xx + 1
  elseif status >= 400 and status < 500 then
    s4xx = s4xx + 1
  elseif status >= 500 then
    s5xx = s5xx + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local a, b, c, d = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    a = a + t:get("s2xx")
    b = b + t:get("s4xx")
    c = c + t:get("s5xx")
    d = d + t:get("other")
  end
  local e = summary.errors
  io.write(string.format(
    "WRK requests=%d seconds=%.3f s2xx=%d s4xx=%d s5xx=%d other=%d sockerr=%d "
      .. "p50_ms=%.2f p99_ms=%.2f\n",
    summary.requests, summary.duration / 1e6, a, b, c, d,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000))
end
