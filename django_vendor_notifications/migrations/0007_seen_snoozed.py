# seen_at and snoozed_until (the SEEN and SNOOZE settings), with the partial indexes that count
# unseen notifications and find a vendor's next wake. Both columns are nullable: adding them
# rewrites no row, and with the settings off nothing ever sets them.

from django.db import migrations, models

UNREAD = models.Q(("archived_at__isnull", True), ("is_read", False))


class Migration(migrations.Migration):
    dependencies = [
        ("django_vendor_notifications", "0006_collapse_key"),
    ]

    operations = [
        migrations.AddField(
            model_name="notification",
            name="seen_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="notification",
            name="snoozed_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(UNREAD, ("seen_at__isnull", True)),
                fields=["vendor", "id"],
                name="vn_vendor_unseen_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(
                condition=models.Q(("snoozed_until__isnull", False)),
                fields=["vendor", "snoozed_until"],
                name="vn_vendor_snoozed_idx",
            ),
        ),
    ]
