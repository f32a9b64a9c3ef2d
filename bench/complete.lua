-- wrk script of bench.http_api: complete tasks through POST <prefix><task id>/complete, one case after another.
--
--   wrk -t1 -c8 -d10s --latency -s bench/complete.lua URL -- TASKS_FILE PREFIX TOKEN BODIES_FILE
--
-- TASKS_FILE: one ready task a line, "<task id> <element id>". BODIES_FILE: "<element id> <JSON body>" a line.
-- Every answer's opened tasks ("id":"...","element_id":"...") go on top of the stack, so a case moves on
-- through its steps while the others wait. When the stack is empty the thread stops (the run ends short
-- and the report says so).

local stack, bodies = {}, {}
local prefix, headers = "", {}

function init(args)
  local tasks_file, bodies_file = args[1], args[4]
  prefix = args[2]
  headers = { ["Authorization"] = "Bearer " .. args[3], ["Content-Type"] = "application/json" }
  local initial = {}
  for line in io.lines(tasks_file) do
    local id, element = line:match("^(%S+) (%S+)$")
    if id then initial[#initial + 1] = { id, element } end
  end
  for i = #initial, 1, -1 do stack[#stack + 1] = initial[i] end -- the first line is taken first
  for line in io.lines(bodies_file) do
    local element, body = line:match("^(%S+) (.+)$")
    if element then bodies[element] = body end
  end
end

function request()
  local task = table.remove(stack)
  if task == nil then
    wrk.thread:stop()
    return wrk.format("GET", "/healthz")
  end
  return wrk.format("POST", prefix .. task[1] .. "/complete", headers, bodies[task[2]])
end

function response(status, _, body)
  if status ~= 200 then
    io.stderr:write("status " .. status .. ": " .. body:sub(1, 300) .. "\n")
    return
  end
  for id, element in body:gmatch('"id":"([%w%-]+)","element_id":"([%w_]+)"') do
    if bodies[element] then stack[#stack + 1] = { id, element } end
  end
end

function done(summary, latency, _)
  local errors = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"status_errors":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
