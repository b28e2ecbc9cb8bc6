from django.db import migrations


def provinces_create(apps, schema_editor):
    from salesloop.accounts.geography import PROVINCES

    Province = apps.get_model("accounts", "Province")
    Province.objects.bulk_create([Province(code=code, name=name) for code, name in PROVINCES],
                                 ignore_conflicts=True)


def provinces_delete(apps, schema_editor):
    apps.get_model("accounts", "Province").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]
    operations = [migrations.RunPython(provinces_create, provinces_delete)]
