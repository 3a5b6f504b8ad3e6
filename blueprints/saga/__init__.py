"""The generic ``saga`` sub-orchestration: run steps in order, compensate in reverse on failure."""
