from django.db import migrations, models

# What "unread" means from here on: not read and not archived (models.UNREAD).
UNREAD = models.Q(("archived_at__isnull", True), ("is_read", False))


class Migration(migrations.Migration):
    # No dependency on the vendor's app beyond 0001's: the vendor model is the host's.
    dependencies = [
        ("django_vendor_notifications", "0002_vendor_id_index"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="archived_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        # Rebuilt with the new condition, so archived rows leave the unread index as well.
        migrations.RemoveIndex(
            model_name="notification",
            name="vn_vendor_unread_idx",
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=UNREAD,
                fields=["vendor", "-created_at", "-id"],
                name="vn_vendor_unread_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=UNREAD,
                fields=["vendor", "category"],
                name="vn_vendor_unread_category_idx",
            ),
        ),
    ]
