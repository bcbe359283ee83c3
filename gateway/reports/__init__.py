"""Delivery reports: reports in (matching and storing), reports out (relay to callers), the pulls."""
