-- wrk script: POST one allocate_budget command per request, each with a fresh command_id.
-- Usage: TOKEN=<finance token> wrk -t2 -c16 -d20s -s ops/loadtest/write.lua http://127.0.0.1:8080
-- Loopback only. Each request appends one record, so point it at a scratch store.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("thread_id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  token = os.getenv("TOKEN") or ""
end

function request()
  counter = counter + 1
  local id = string.format("%08x-0000-4000-8000-%012x", thread_id, counter)
  local body = '{"command_id":"' .. id .. '","type":"allocate_budget","measure":"M10","fiscal_year":2026,"amount":"1.00"}'
  return wrk.format("POST", "/v1/commands", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, non-2xx/3xx %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
