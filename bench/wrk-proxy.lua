-- wrk script for bench/run: the request line and Host header come from the
-- environment, so one script serves a direct origin (BENCH_PATH=/small) and a
-- forward proxy (BENCH_PATH=http://127.0.0.1:PORT/small, the absolute URI a
-- proxy needs). done() prints one JSON line that bench/run parses.
wrk.path = os.getenv("BENCH_PATH") or "/"
local host = os.getenv("BENCH_HOST")
if host then
   wrk.headers["Host"] = host
end
wrk.headers["User-Agent"] = "awf-bench"
-- A proxy that wants credentials (srt's, scenario 8): "Basic ..." as given.
local auth = os.getenv("BENCH_PROXY_AUTH")
if auth then
   wrk.headers["Proxy-Authorization"] = auth
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.mean, latency.max))
end
