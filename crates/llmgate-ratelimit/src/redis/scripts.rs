//! The Lua scripts the Redis store runs. Each runs atomically on the server, on the server's
//! clock (`TIME`, microseconds since `ARGV[1]` seconds), so instances' clocks do not matter.
//!
//! Rate counters are a hash per limit: one field per granule (`⌊now / ⌈window / 60⌉⌋`, written
//! with `%d`) holding the units counted in it, the formula of [`llmgate_core::window`]. Parallel
//! counters are a sorted set of the requests in flight, each scored with the end of its lease.

/// Checks every counter of a request and takes them all, or none.
///
/// `ARGV`: epoch, member, lease (µs), then per key: kind (`r` or `p`), limit, window (µs),
/// cost. Returns `{denied (1-based, 0: admitted), now, expired leases removed, then per key:
/// remaining, reset (µs), retry after (µs, -1: none)}`.
pub(super) const ACQUIRE: &str = r"
local t = redis.call('TIME')
local now = (tonumber(t[1]) - tonumber(ARGV[1])) * 1000000 + tonumber(t[2])
local member, lease_us = ARGV[2], tonumber(ARGV[3])
local N = 60
local out, take, denied, reclaimed = {0, now, 0}, {}, 0, 0
for i = 1, #KEYS do
  local a = 3 + (i - 1) * 4
  local kind, limit = ARGV[a + 1], tonumber(ARGV[a + 2])
  local window, cost = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  local ok, remaining, reset, retry = false, 0, 0, -1
  if kind == 'r' then
    local gran = math.max(1, math.ceil(window / N))
    local g = math.floor(now / gran)
    local h = redis.call('HGETALL', KEYS[i])
    local live, used, stale, newest = {}, 0, {}, -1
    for j = 1, #h, 2 do
      local tag, n = tonumber(h[j]), tonumber(h[j + 1])
      if tag + N < g then
        stale[#stale + 1] = h[j]
      elseif tag <= g + 1 and n > 0 then
        live[#live + 1] = {tag, n}
        used = used + n
        if tag > newest then newest = tag end
      end
    end
    if #stale > 0 then redis.call('HDEL', KEYS[i], unpack(stale)) end
    ok = limit > 0 and cost <= limit and used + cost <= limit
    if ok then
      remaining = limit - used - cost
      if g > newest then newest = g end
      take[i] = {g, gran, window}
    else
      remaining = math.max(0, limit - used)
      if limit > 0 and cost <= limit then
        table.sort(live, function(x, y) return x[1] < y[1] end)
        local left = used
        retry = 0
        for _, e in ipairs(live) do
          left = left - e[2]
          if left + cost <= limit then
            retry = (e[1] + N + 1) * gran - now
            break
          end
        end
      end
    end
    if newest >= 0 then reset = math.max(0, (newest + N + 1) * gran - now) end
  else
    reclaimed = reclaimed + redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local used = redis.call('ZCARD', KEYS[i])
    ok = used < limit
    remaining = math.max(0, limit - used - (ok and 1 or 0))
  end
  if not ok and denied == 0 then denied = i end
  out[#out + 1] = remaining
  out[#out + 1] = reset
  out[#out + 1] = retry
end
out[1] = denied
out[3] = reclaimed
if denied == 0 then
  for i = 1, #KEYS do
    local ttl
    if take[i] then
      local g, gran, window = take[i][1], take[i][2], take[i][3]
      redis.call('HINCRBY', KEYS[i], string.format('%d', g), tonumber(ARGV[3 + (i - 1) * 4 + 4]))
      ttl = math.ceil((window + 2 * gran) / 1000) + 1000
    else
      redis.call('ZADD', KEYS[i], now + lease_us, member)
      ttl = math.ceil(lease_us / 1000) + 1000
    end
    if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
  end
end
return out
";

/// Settles one request: token reservations moved by their delta (given back from the granule
/// they were counted in, `at`; used beyond them counted now), parallel slots released.
///
/// `ARGV`: epoch, member, number of rate keys, at (µs), then per rate key: limit, window (µs),
/// delta. The keys after the rate keys are parallel counters. Returns the slots released.
pub(super) const SETTLE: &str = r"
local t = redis.call('TIME')
local now = (tonumber(t[1]) - tonumber(ARGV[1])) * 1000000 + tonumber(t[2])
local member, rates, at = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local N = 60
local freed = 0
for i = 1, #KEYS do
  if i <= rates then
    local a = 4 + (i - 1) * 3
    local window, delta = tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    local gran = math.max(1, math.ceil(window / N))
    if delta >= 0 then
      redis.call('HINCRBY', KEYS[i], string.format('%d', math.floor(now / gran)), delta)
      local ttl = math.ceil((window + 2 * gran) / 1000) + 1000
      if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
    else
      local f = string.format('%d', math.floor(at / gran))
      local n = tonumber(redis.call('HGET', KEYS[i], f) or '0')
      if n + delta > 0 then
        redis.call('HSET', KEYS[i], f, n + delta)
      elseif n > 0 then
        redis.call('HDEL', KEYS[i], f)
      end
    end
  else
    freed = freed + redis.call('ZREM', KEYS[i], member)
  end
end
return freed
";

/// Extends the leases of requests still in flight.
///
/// `ARGV`: epoch, lease (µs), then one member per key. A member that is gone (released, or
/// expired while Redis was away) is not added back. Returns the leases extended.
pub(super) const RENEW: &str = r"
local t = redis.call('TIME')
local now = (tonumber(t[1]) - tonumber(ARGV[1])) * 1000000 + tonumber(t[2])
local lease_us = tonumber(ARGV[2])
local ttl = math.ceil(lease_us / 1000) + 1000
local n = 0
for i = 1, #KEYS do
  n = n + redis.call('ZADD', KEYS[i], 'XX', 'CH', now + lease_us, ARGV[2 + i])
  if redis.call('PTTL', KEYS[i]) < ttl then redis.call('PEXPIRE', KEYS[i], ttl) end
end
return n
";
