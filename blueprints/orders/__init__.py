"""Order processing: the ``process_order`` saga over inventory, payment and shipping, its
activities and providers, the ``Orders`` read model and the ``/api/orders`` routes."""
