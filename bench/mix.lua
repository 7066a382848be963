-- wrk script for bench/soak: every request kind in turn (chat, /v1/messages, /v1/responses, each
-- streaming and not), with an Authorization header; at the end one machine-readable line, as
-- post.lua prints. Inputs from the environment:
--   BENCH_KEY    the bearer token
--   BENCH_MODEL  the model group
local key = os.getenv("BENCH_KEY")
local model = os.getenv("BENCH_MODEL")
local hello = '[{"role":"user","content":"Say hello."}]'
local usage = ',"stream_options":{"include_usage":true}'
local kinds = {
  { "/v1/chat/completions", '"messages":' .. hello .. ',"max_tokens":16', usage },
  { "/v1/messages", '"messages":' .. hello .. ',"max_tokens":16', "" },
  { "/v1/responses", '"input":"Say hello.","max_output_tokens":16', "" },
}
local requests = {}
local next_request = 1

function init(args)
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. key }
  for _, kind in ipairs(kinds) do
    local body = '{"model":"' .. model .. '",' .. kind[2]
    table.insert(requests, wrk.format("POST", kind[1], headers, body .. "}"))
    table.insert(requests, wrk.format("POST", kind[1], headers, body .. ',"stream":true' .. kind[3] .. "}"))
  end
end

function request()
  local r = requests[next_request]
  next_request = next_request % #requests + 1
  return r
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d "
      .. "connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
