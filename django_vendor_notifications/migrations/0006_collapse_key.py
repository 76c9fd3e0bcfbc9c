from django.db import migrations, models

# The condition of models.UNREAD_KEYED: unread (not read, not archived) and with a key.
UNREAD_KEYED = models.Q(("archived_at__isnull", True), ("is_read", False)) & ~models.Q(
    ("collapse_key", "")
)


class Migration(migrations.Migration):
    # 0005 and 0007 come from other features; only 0004's state is needed here.
    dependencies = [
        ("django_vendor_notifications", "0005_digests"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="collapse_key",
            field=models.CharField(blank=True, default="", max_length=100),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=UNREAD_KEYED,
                fields=["vendor", "collapse_key", "id"],
                name="vn_vendor_unread_collapse_idx",
            ),
        ),
    ]
