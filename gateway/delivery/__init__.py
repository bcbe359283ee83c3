"""Durable delivery of HTTP requests the bridge makes (the outbox) and the allow-list they obey."""
