-- wrk script: POST the spec's example request (sandbox default credentials) to the COSMOS sandbox.
-- Usage: wrk -t1 -c50 -d10s -s bench/sandbox_send.lua http://127.0.0.1:8900/v1.0/sms/
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
wrk.body = '{"api_key":"sandbox-key","api_secret":"sandbox-secret","to":"033334445566770","from":"Company Name 123","text":"Hello world!"}'

-- wrk counts non-2xx answers as "status" errors; print them so a fast but wrong run shows.
done = function(summary, latency, requests)
  io.write(string.format("requests: %d, errors: connect %d read %d write %d status %d timeout %d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
