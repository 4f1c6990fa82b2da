"""GET /healthz, /readyz and /metrics."""
