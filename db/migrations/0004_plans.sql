-- The plans the product sells. Limits: a JSON null means unlimited. api_requests and ai_tokens are per
-- calendar month (UTC); documents and storage_bytes are standing totals. Prices: "baseMicros" per month,
-- and per metric the included quantity and the price of each started unit (unitSize of the metric) beyond it.
SET LOCAL ROLE app_owner;

INSERT INTO app.plans (id, name, limits, prices, currency, rate_limit_rps) VALUES
  ('free', 'Free',
   '{"api_requests": 10000, "documents": 100, "storage_bytes": 104857600, "ai_tokens": 100000}',
   '{"baseMicros": 0,
     "api_requests": {"included": 10000, "unitSize": 1, "unitPriceMicros": 0},
     "documents": {"included": 100, "unitSize": 1, "unitPriceMicros": 0},
     "storage_bytes": {"included": 104857600, "unitSize": 1073741824, "unitPriceMicros": 0},
     "ai_tokens": {"included": 100000, "unitSize": 1, "unitPriceMicros": 0}}',
   'USD', 10),
  ('pro', 'Pro',
   '{"api_requests": 1000000, "documents": 10000, "storage_bytes": 10737418240, "ai_tokens": 10000000}',
   '{"baseMicros": 49000000,
     "api_requests": {"included": 500000, "unitSize": 1, "unitPriceMicros": 100},
     "documents": {"included": 10000, "unitSize": 1, "unitPriceMicros": 0},
     "storage_bytes": {"included": 5368709120, "unitSize": 1073741824, "unitPriceMicros": 250000},
     "ai_tokens": {"included": 1000000, "unitSize": 1, "unitPriceMicros": 2}}',
   'USD', 100),
  ('enterprise', 'Enterprise',
   '{"api_requests": null, "documents": null, "storage_bytes": null, "ai_tokens": null}',
   '{"baseMicros": 499000000,
     "api_requests": {"included": 10000000, "unitSize": 1, "unitPriceMicros": 50},
     "documents": {"included": 1000000, "unitSize": 1, "unitPriceMicros": 0},
     "storage_bytes": {"included": 107374182400, "unitSize": 1073741824, "unitPriceMicros": 200000},
     "ai_tokens": {"included": 50000000, "unitSize": 1, "unitPriceMicros": 1}}',
   'USD', 1000);
