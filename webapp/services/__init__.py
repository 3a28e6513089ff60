"""The domain: plain functions with explicit arguments, never flask.request."""
