"""`salesloop worker`: the background task worker (django-tasks-db's db_worker, same options)."""

from django_tasks_db.management.commands.db_worker import Command as DatabaseWorkerCommand


class Command(DatabaseWorkerCommand):
    help = "Run the background task worker (processes the database task queue)."
