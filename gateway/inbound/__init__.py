"""Inbound (MO) SMS: the push webhook's parsing, routing rules, storage and the pull inbox.

Modules: ``message`` (Infobip's inbound shape <-> :class:`InboundMessage`, JSON and XML), ``settings``
(the ``inbound:`` config section), ``kannel`` (Kannel ``get-url`` escapes as template aliases),
``routing`` (compiled rules and the actions they prepare), ``store`` (SQLite tables of migration 3),
``service`` (one push: store once, route, forward, reply). The HTTP side is
``gateway/entrances/inbound.py``. This package imports nothing at package level (config.py and db.py
import its leaf modules).
"""
