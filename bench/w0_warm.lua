-- Warm-up: reads every account once, in batches of 100 consecutive ids, spread over wrk's
-- threads, so that W1/W2 measure the steady state (profiles in the read cache), not first reads.
-- env: PATH_Q (path with query), N (accounts loaded), WRK_THREADS (wrk's -t)
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local path = os.getenv("PATH_Q")
local n = tonumber(os.getenv("N"))
-- Thread `tid` (common.lua) reads batches tid, tid + WRK_THREADS, … (the count comes from the
-- caller: no thread can be told it safely from setup(), see common.lua).
local common_init = init
function init(args)
  common_init(args)
  batch = tid
  step = tonumber(os.getenv("WRK_THREADS")) or error("w0_warm.lua: set WRK_THREADS to wrk's -t")
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
