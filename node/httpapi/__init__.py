"""The node's HTTP API (docs/http.md): HMA-compatible and native routes,
API keys, uploads hashed in a worker process."""
