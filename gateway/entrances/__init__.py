"""Entrances: HTTP only. One blueprint per wire dialect or concern; each produces model objects or an ApiError."""
