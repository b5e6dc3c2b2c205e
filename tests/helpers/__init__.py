"""Test helpers: generated dataset trees, reference implementations, records, settings."""
