"""Infobip's shapes (v1 query, v2 advanced, v3; JSON and XML) <-> the model; error envelopes. The only code that knows them."""
