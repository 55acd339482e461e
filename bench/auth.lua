-- wrk script: the headers a host backend or portal.js would send (from the environment).
wrk.headers["Authorization"] = os.getenv("BENCH_AUTHORIZATION")
local origin = os.getenv("BENCH_ORIGIN")
if origin and origin ~= "" then wrk.headers["Origin"] = origin end
