"""Pydantic v2 models: ``common`` (the wire conventions), ``registry`` (which orchestrators and
events the HTTP API accepts), ``management`` (the instance endpoints) and one module per workflow.
"""
