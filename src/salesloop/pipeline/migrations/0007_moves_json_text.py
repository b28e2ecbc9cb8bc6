"""PostgreSQL: a stage move's record (`filled`) and explanation are kept as `json` (their text,
checked) instead of `jsonb`, as an assignment's trace is (routing 0004).

Every new lead writes one move (~790,000 in a million-row import, one per webhook lead), each with
its ~200-byte explanation; `jsonb` parsed each into a binary tree on the way in: a COPY of 20,000
first moves took 168 ms with `jsonb` against 106 ms with `json` (bench/README.md). Moves are read
whole; the one look inside, the funnel's `explanation ->> 'direction'`, reads `json` alike. SQLite's
columns are text either way."""

import salesloop.core.models
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ('pipeline', '0006_default_requirements'),
    ]

    operations = [
        migrations.AlterField(
            model_name='stagemove',
            name='explanation',
            field=salesloop.core.models.JSONTextField(),
        ),
        migrations.AlterField(
            model_name='stagemove',
            name='filled',
            field=salesloop.core.models.JSONTextField(blank=True, default=dict),
        ),
    ]
