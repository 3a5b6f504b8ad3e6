"""HTTP endpoints and workflows, one ``df.Blueprint`` per module; function_app.py registers them."""
