"""Real-time in-app notifications for a marketplace's vendors over an authenticated WebSocket.

The Python API a host calls lives in :mod:`django_vendor_notifications.services`
(``notify``); see ``docs/`` for installation, settings and the wire protocol.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    # pyproject.toml holds the one version; the installed metadata carries it here.
    __version__ = version("django-vendor-notifications")
except PackageNotFoundError:  # pragma: no cover - imported from a tree that is not installed
    __version__ = "0+unknown"
