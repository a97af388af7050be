-- Warm-up: reads every account once, in batches of 100 consecutive ids, spread over wrk's
-- threads, so that W1/W2 measure the steady state (profiles in the read cache), not first reads.
-- env: PATH_Q (path with query), N (accounts loaded)
local path = os.getenv("PATH_Q")
local n = tonumber(os.getenv("N"))
-- setup() runs in the main Lua state; each thread gets its index and the thread count.
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads - 1)
  for _, t in ipairs(threads) do t:set("nthreads", #threads) end
end
function init(args)
  batch = tonumber(wrk.thread:get("tid")) or 0
  step = tonumber(wrk.thread:get("nthreads")) or 1
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local start = (batch * 100) % n
  batch = batch + step
  local ids = {}
  for i = 0, 99 do ids[i + 1] = '"u' .. ((start + i) % n) .. '"' end
  local body = '{"To_Account":[' .. table.concat(ids, ",") .. '],"TagList":["Tag_Profile_IM_Nick"]}'
  return wrk.format(nil, path, nil, body)
end
