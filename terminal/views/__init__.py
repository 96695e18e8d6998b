"""Blueprints, one per domain: thin views that parse, call a service, then render."""
