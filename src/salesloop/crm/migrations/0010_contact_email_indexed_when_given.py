"""A contact's e-mail is indexed only where it has one, as its phone and WeCom id are.

Most lead lists leave the e-mail blank, and every blank was an entry in the index: ~790,000 of them
in a million-row import, each an insert into the same run of equal keys. The identity look-ups
repeat the condition (`core.rows.not_blank`), which SQLite needs to use a partial index."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0009_lead_indexes_ascending'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='contact',
            name='contact_email_idx',
        ),
        migrations.AddIndex(
            model_name='contact',
            index=models.Index(condition=models.Q(('email', ''), _negated=True), fields=['email'], name='contact_email_idx'),
        ),
    ]
