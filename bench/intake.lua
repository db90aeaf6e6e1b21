-- wrk script of bench/intake.py: posts orders with unique external ids, alternating the two merchants' keys, a
-- share of them on the hot SKU. Each answer is written to $BENCH_OUT/answers-<thread>.txt as
-- "<status> <external id> <order id> <key index> <sku> <quantity>" ("-" where the answer names no order);
-- a thread stops once it has its $BENCH_QUOTA answers (0: never, the run's duration decides).
-- The body is bench/intake.py's order_body(): a replay rebuilds it from the line.

local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end

local function split(text)
  local words = {}
  for word in string.gmatch(text or "", "%S+") do
    words[#words + 1] = word
  end
  return words
end

local keys, skus, quota, run, file, sent, answered, hot_share, headers

function init(args)
  keys = split(os.getenv("BENCH_KEYS"))
  skus = { split(os.getenv("BENCH_SKUS_1")), split(os.getenv("BENCH_SKUS_2")) }
  quota = tonumber(os.getenv("BENCH_QUOTA")) or 0
  hot_share = tonumber(os.getenv("BENCH_HOT_SHARE")) or 30
  run = os.getenv("BENCH_RUN") or "r"
  math.randomseed(tid * 7919)
  sent, answered = 0, 0
  if quota > 0 then
    file = io.open(os.getenv("BENCH_OUT") .. "/answers-" .. tid .. ".txt", "w")
  end
end

function request()
  sent = sent + 1
  local k = sent % 2 -- alternate the merchants
  local sku
  -- The hot SKU is merchant 1's first; 30 % of all orders are on it, so 60 % of merchant 1's.
  if k == 0 and math.random(100) <= hot_share * 2 then
    sku = skus[1][1]
  else
    local list = skus[k + 1]
    sku = list[math.random(2, #list)]
  end
  local external_id = run .. tid .. "-" .. sent .. "-" .. k
  local body = '{"channel":"bench","external_id":"' .. external_id .. '","currency":"EUR",'
    .. '"shopper":{"name":"Camille Martin","email":"camille@example.fr","phone":"06 12 34 56 78"},'
    .. '"shipping_address":{"line1":"12 rue de la Roquette","postcode":"75011","city":"Paris","country":"FR"},'
    .. '"carrier_service":"colissimo_home",'
    .. '"lines":[{"sku":"' .. sku .. '","quantity":1,"unit_price":"19.90"}]}'
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. keys[k + 1],
  }, body)
end

function response(status, headers, body)
  if quota == 0 then
    return
  end
  answered = answered + 1
  if status == 200 or status == 201 then
    local external_id = body:match('"external_id":%s*"([^"]+)"') or "-"
    local order_id = body:match('^{"id":%s*(%d+)') or "-"
    local sku = body:match('"sku":%s*"([^"]+)"') or "-"
    local k = external_id:match("-(%d)$") or "-"
    file:write(status, " ", external_id, " ", order_id, " ", k, " ", sku, " 1\n")
  else
    file:write(status, " - - - - -\n")
  end
  if answered % 50 == 0 then
    file:flush()
  end
  if answered >= quota then
    file:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  io.write(string.format(
    'BENCH {"duration_us": %d, "requests": %d, "ok": %d, "p50_us": %d, "p99_us": %d, "max_us": %d,'
      .. ' "timeouts": %d, "connect_errors": %d}\n',
    summary.duration, summary.requests, summary.requests - summary.errors.status, latency:percentile(50),
    latency:percentile(99), latency.max, summary.errors.timeout, summary.errors.connect))
end
