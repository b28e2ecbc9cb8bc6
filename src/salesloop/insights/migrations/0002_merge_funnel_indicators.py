# The funnel rollups (0001_initial) and the indicator tables (0001_indicators) were built side by
# side; this joins the two lines.
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("insights", "0001_initial"),
        ("insights", "0001_indicators"),
    ]

    operations = []
