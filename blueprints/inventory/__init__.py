"""Inventory: the ``inventory`` entity (one per SKU) and ``/api/inventory/{sku}`` routes."""
