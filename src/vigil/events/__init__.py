"""Events and notifications: the event store (object events, motion timeline, holds on
the footage around events), MQTT with Home Assistant discovery, and signed webhooks.

``Notifier`` is the entry point for the analytics integration: its ``on_event`` and
``on_activity`` methods are the pipeline callbacks, and ``build_notifier`` wires everything
from an :class:`~vigil.config.events_model.EventsConfig`.
"""
