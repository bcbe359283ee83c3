"""Inbound (MO) SMS: routing rules, replies and forwarding.

Modules: ``settings`` (the ``inbound:`` config section), ``templating`` (rule templates, Kannel ``get-url``
escapes as aliases), ``routing`` (compiled rules), ``service`` (one push: store once, route, forward, reply).
Messages are :class:`gateway.model.InboundMessage`; Infobip's inbound shape is ``gateway/wire/inbound.py``,
the forward ``gateway/delivery/channels.py``, the tables ``gateway/store/inbound.py``, the HTTP side
``gateway/entrances/inbound.py``. This package imports nothing
at package level (config.py imports its leaf modules).
"""
