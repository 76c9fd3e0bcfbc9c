from django.db import migrations, models


class Migration(migrations.Migration):
    # No dependency on the vendor's app beyond 0001's: the vendor model is the host's.
    dependencies = [
        ("django_vendor_notifications", "0001_initial"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="notification",
            index=models.Index(fields=["vendor", "id"], name="vn_vendor_id_idx"),
        ),
    ]
