"""Listening histories from other services: their export formats, and matching them to the catalogue (pure)."""
