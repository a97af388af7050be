-- W1: portrait_get, 1 account x 4 tags, same valid admin UserSig on every request.
-- env: PATH_Q (path with query), N (accounts loaded)
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local path = os.getenv("PATH_Q")
local n = tonumber(os.getenv("N"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
-- Every thread takes the same walk over the accounts (step k reads account k * 7919 mod N, each
-- account once per N steps when N is not a multiple of the prime 7919), each from its own start:
-- thread `tid` starts at the fractional part of tid × the golden ratio of the way, which keeps
-- the starts of any number of threads far apart, so no two threads ask for the same account
-- within a run.
local step
local common_init = init
function init(args)
  common_init(args)
  step = math.floor(n * ((tid * 0.6180339887) % 1))
end
request = function()
  step = step + 1
  local body = '{"To_Account":["u' .. (step * 7919 % n) .. '"],"TagList":["Tag_Profile_IM_Nick","Tag_Profile_IM_Image","Tag_Profile_IM_Gender","Tag_Profile_IM_Level"]}'
  return wrk.format(nil, path, nil, body)
end
