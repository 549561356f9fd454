-- wrk: each request a new filter value, from BENCH_PATH with "%d" in it
-- (cycling over BENCH_VALUES values), so no answer repeats within a run.
local fmt = os.getenv("BENCH_PATH")
local values = tonumber(os.getenv("BENCH_VALUES") or "100000")
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", string.format(fmt, n % values))
end
