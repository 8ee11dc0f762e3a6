-- wrk script: GET a projection with a bearer token.
-- Usage: TOKEN=<token> wrk -t2 -c16 -d20s -s ops/loadtest/read.lua http://127.0.0.1:8080/v1/budgets
function init(args)
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "")
end

function done(summary, latency, requests)
  io.write(string.format("p50 %.2f ms, p99 %.2f ms, non-2xx/3xx %d\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, summary.errors.status))
end
