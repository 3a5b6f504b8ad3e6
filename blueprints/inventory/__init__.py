"""Inventory: the ``inventory`` entity (one per SKU) and ``/api/inventory/{sku}`` routes."""

from blueprints.inventory import entity, http

# What function_app.py registers: every blueprint of the package.
BLUEPRINTS = (entity.bp, http.bp)
