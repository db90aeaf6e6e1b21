-- wrk script of bench/intake.py's batch phase: POST /api/v1/orders/batch, $BENCH_BATCH_SIZE orders per request
-- (one merchant's, alternating the two merchants' keys per request), channel "bench-batch", the same order body as
-- bench/intake.lua (30 % of lines on the hot SKU). What a shop connector or a CSV import sends during a sale.
-- Counts the orders each answer accepted (results with status 201 or 200) and prints them with wrk's latency of
-- the requests in done().

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
  threads[#threads + 1] = thread
end

local function split(text)
  local words = {}
  for word in string.gmatch(text or "", "%S+") do
    words[#words + 1] = word
  end
  return words
end

local keys, skus, size, run, sent, hot_share

function init(args)
  keys = split(os.getenv("BENCH_KEYS"))
  skus = { split(os.getenv("BENCH_SKUS_1")), split(os.getenv("BENCH_SKUS_2")) }
  size = tonumber(os.getenv("BENCH_BATCH_SIZE")) or 100
  hot_share = tonumber(os.getenv("BENCH_HOT_SHARE")) or 30
  run = os.getenv("BENCH_RUN") or "b"
  math.randomseed(tid * 104729)
  sent = 0
  accepted, refused = 0, 0
end

local function order(k, external_id)
  local sku
  if k == 0 and math.random(100) <= hot_share * 2 then
    sku = skus[1][1]
  else
    local list = skus[k + 1]
    sku = list[math.random(2, #list)]
  end
  return '{"channel":"bench-batch","external_id":"' .. external_id .. '","currency":"EUR",'
    .. '"shopper":{"name":"Camille Martin","email":"camille@example.fr","phone":"06 12 34 56 78"},'
    .. '"shipping_address":{"line1":"12 rue de la Roquette","postcode":"75011","city":"Paris","country":"FR"},'
    .. '"carrier_service":"colissimo_home",'
    .. '"lines":[{"sku":"' .. sku .. '","quantity":1,"unit_price":"19.90"}]}'
end

function request()
  sent = sent + 1
  local k = sent % 2
  local orders = {}
  for i = 1, size do
    orders[i] = order(k, run .. tid .. "-" .. sent .. "-" .. i .. "-" .. k)
  end
  return wrk.format("POST", nil, {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. keys[k + 1],
  }, '{"orders":[' .. table.concat(orders, ",") .. ']}')
end

function response(status, headers, body)
  if status ~= 200 then
    refused = refused + size
    return
  end
  -- A result's status is a number; an order's own "status" is a string ("allocated"): only the former match.
  local _, ok = string.gsub(body, '"status":%s*20[01][,}]', "")
  accepted = accepted + ok
  refused = refused + (size - ok)
end

function done(summary, latency, requests)
  local total_accepted, total_refused = 0, 0
  for _, thread in ipairs(threads) do
    total_accepted = total_accepted + (thread:get("accepted") or 0)
    total_refused = total_refused + (thread:get("refused") or 0)
  end
  io.write(string.format(
    'BENCH {"duration_us": %d, "requests": %d, "ok": %d, "p50_us": %d, "p99_us": %d, "max_us": %d,'
      .. ' "timeouts": %d, "connect_errors": %d, "orders_accepted": %d, "orders_refused": %d}\n',
    summary.duration, summary.requests, summary.requests - summary.errors.status, latency:percentile(50),
    latency:percentile(99), latency.max, summary.errors.timeout, summary.errors.connect, total_accepted,
    total_refused))
end
