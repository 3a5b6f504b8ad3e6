"""Task chaining: ``chain_with_compensation`` runs steps in order with a per-step retry policy
(exponential backoff built from durable timers) and an error handler when retries run out."""
