-- wrk's request generator for Feast's POST /get-online-features (loadtest/feast_bench.sh):
-- FEAST_BATCH random entities of 0..FEAST_ENTITIES-1 per request, the benchmark view's 10
-- features, a body as Feast's Python client sends it.
local batch = tonumber(os.getenv("FEAST_BATCH") or "1")
local entities = tonumber(os.getenv("FEAST_ENTITIES") or "100000")
local refs = '["bench:d0", "bench:d1", "bench:d2", "bench:d3", "bench:d4", "bench:d5", ' ..
    '"bench:d6", "bench:d7", "bench:count", "bench:label"]'
local headers = { ["Content-Type"] = "application/json" }
local seeded = false

request = function()
    if not seeded then
        math.randomseed(os.time() + math.floor(os.clock() * 1e6))
        seeded = true
    end
    local ids = {}
    for i = 1, batch do
        ids[i] = math.random(0, entities - 1)
    end
    local body = '{"entities": {"entity_id": [' .. table.concat(ids, ", ") .. ']}, ' ..
        '"features": ' .. refs .. ', "full_feature_names": false}'
    return wrk.format("POST", "/get-online-features", headers, body)
end
