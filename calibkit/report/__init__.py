"""Turning results into things people and programs read: tables, JSON, files."""
