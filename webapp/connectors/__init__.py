"""Accounting software connectors, one module each, behind one small interface."""
