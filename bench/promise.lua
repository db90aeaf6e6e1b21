-- wrk script of bench/promise.py: every connection posts the same 5-line cart ($BENCH_BODY, with the merchant's key
-- $BENCH_KEY). Each wrk thread hands its connections send times $BENCH_INTERVAL_MS apart (a schedule on the wall
-- clock, through LuaJIT's ffi: wrk's Lua has no millisecond clock), so the threads together send a constant rate
-- whatever the latency, as long as a connection is free for each slot. At the end, one line "BENCH {json}" with the
-- counts and wrk's latency percentiles (microseconds).

local ffi = require("ffi")
ffi.cdef([[
typedef struct { long tv_sec; long tv_usec; } bench_timeval;
int gettimeofday(bench_timeval *tv, void *tz);
]])
local clock = ffi.new("bench_timeval")

local function now_ms()
  ffi.C.gettimeofday(clock, nil)
  return tonumber(clock.tv_sec) * 1000 + tonumber(clock.tv_usec) / 1000
end

local request_text

function init(args)
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY") }
  request_text = wrk.format("POST", "/api/v1/promise", headers, os.getenv("BENCH_BODY"))
  interval = tonumber(os.getenv("BENCH_INTERVAL_MS")) or 0
  last_slot = now_ms()
end

function request()
  return request_text
end

function delay()
  if interval <= 0 then
    return 0
  end
  local now = now_ms()
  -- A slot already past is not sent late in a burst: the schedule restarts from now (wrk is not wrk2).
  last_slot = math.max(last_slot + interval, now)
  return math.floor(last_slot - now + 0.5)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, errors.status, errors.connect + errors.read + errors.write + errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
