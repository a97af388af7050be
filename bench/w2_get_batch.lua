-- W2: portrait_get, 100 random accounts x 5 tags (4 standard + 1 custom).
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local path = os.getenv("PATH_Q")
local n = tonumber(os.getenv("N"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
request = function()
  local ids = {}
  for i = 1, 100 do ids[i] = '"u' .. math.random(0, n - 1) .. '"' end
  local body = '{"To_Account":[' .. table.concat(ids, ",") .. '],"TagList":["Tag_Profile_IM_Nick","Tag_Profile_IM_Image","Tag_Profile_IM_Gender","Tag_Profile_IM_Level","Tag_Profile_Custom_Hobby"]}'
  return wrk.format(nil, path, nil, body)
end
