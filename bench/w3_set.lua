-- W3: portrait_set, random accounts, 3 tags, durable.
dofile(os.getenv("BENCH_DIR") .. "/common.lua")
local path = os.getenv("PATH_Q")
local n = tonumber(os.getenv("N"))
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  counter = counter + 1
  local body = '{"From_Account":"u' .. math.random(0, n - 1) .. '","ProfileItem":[{"Tag":"Tag_Profile_IM_Nick","Value":"n' .. counter ..
    '"},{"Tag":"Tag_Profile_IM_Level","Value":' .. (counter % 100) .. '},{"Tag":"Tag_Profile_Custom_Hobby","Value":"h' .. counter .. '"}]}'
  return wrk.format(nil, path, nil, body)
end
