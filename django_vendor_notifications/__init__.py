"""Real-time in-app notifications for a marketplace's vendors over an authenticated WebSocket.

The Python API a host calls lives in :mod:`django_vendor_notifications.services`
(``notify``); see ``docs/`` for installation, settings and the wire protocol.
"""

__version__ = "0.1.0"
