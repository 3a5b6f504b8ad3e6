"""The health monitor: ``health_monitor`` polls a URL over HTTP on a state-dependent interval,
alerts once per transition to unhealthy and restarts itself with ``continue_as_new``."""
