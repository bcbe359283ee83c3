"""Entrances: one blueprint per wire dialect; each produces canonical objects or an ApiError."""
