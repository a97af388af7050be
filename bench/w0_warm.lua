-- Warm-up: reads every account once, in batches of 100 consecutive ids, spread over wrk's
-- threads, so that W1/W2 measure the steady state (profiles in the read cache), not first reads.
-- env: PATH_Q (path with query), N (accounts loaded)
local path = os.getenv("PATH_Q")
local n = tonumber(os.getenv("N"))
local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads - 1)
end
function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
  batch = tid
end
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local start = (batch * 100) % n
  batch = batch + #threads
  local ids = {}
  for i = 0, 99 do ids[i + 1] = '"u' .. ((start + i) % n) .. '"' end
  local body = '{"To_Account":[' .. table.concat(ids, ",") .. '],"TagList":["Tag_Profile_IM_Nick"]}'
  return wrk.format(nil, path, nil, body)
end
