-- Shared wrk helpers: numbers wrk's threads and seeds each one's random numbers apart, and
-- prints one machine-readable line at the end of a run.

-- Each wrk thread runs the script in a Lua state of its own. wrk calls setup() in the main state
-- for each thread right before that thread's init() and start, so setup() touches only the new
-- thread (the threads started before it are already running): it gives it its index `tid`.
-- Seeded alike, every thread would send the same accounts in the same order, and half the reads
-- would find what the other thread had just loaded.
local started = 0
function setup(thread)
  thread:set("tid", started)
  started = started + 1
end
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
  math.randomseed(os.time() * 64 + tid)
end

function done(summary, latency, requests)
  local secs = summary.duration / 1e6
  local errs = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout
  io.write(string.format("RESULT rps=%.1f p50_ms=%.3f p99_ms=%.3f requests=%d errors=%d non2xx=%d\n",
    summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.requests, errs, summary.errors.status))
end
