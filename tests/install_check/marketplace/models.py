from django.conf import settings
from django.db import models


class Vendor(models.Model):  # noqa: DJ008 - the smallest model, as the guide shows it
    """The smallest vendor model the default access policy works with: an owner."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
