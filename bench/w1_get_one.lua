-- W1: portrait_get, 1 account x 4 tags, same valid admin UserSig on every request.
-- env: PATH_Q (path with query), N (accounts loaded)
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local path = os.getenv("PATH_Q")
local n = tonumber(os.getenv("N"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  counter = counter + 1
  -- Thread `tid` takes every `nthreads`-th step of one walk over the accounts (7919 is prime, so
  -- the walk reaches each account once per N steps): no two threads ask for the same account.
  local step = counter * nthreads + tid
  local body = '{"To_Account":["u' .. (step * 7919 % n) .. '"],"TagList":["Tag_Profile_IM_Nick","Tag_Profile_IM_Image","Tag_Profile_IM_Gender","Tag_Profile_IM_Level"]}'
  return wrk.format(nil, path, nil, body)
end
