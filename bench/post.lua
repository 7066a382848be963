-- wrk script for bench/run: POST a JSON body with an Authorization header, and at the end print
-- one machine-readable line that bench/run parses. Inputs come from the environment:
--   BENCH_BODY  the request body (JSON)
--   BENCH_KEY   the bearer token
-- Latencies are wrk's, in microseconds. `errors.status` counts responses with status >= 400.
wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY")
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d "
      .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
