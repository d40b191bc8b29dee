-- wrk script for POST /login (make bench). The credentials are the ones
-- Benchmarks/bench.sh registers before the run.
wrk.method = "POST"
wrk.body = '{"username":"benchuser","password":"bench-password-1"}'
wrk.headers["Content-Type"] = "application/json"
