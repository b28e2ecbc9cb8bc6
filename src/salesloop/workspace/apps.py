from django.apps import AppConfig


class WorkspaceConfig(AppConfig):
    name = "salesloop.workspace"
    label = "workspace"
    verbose_name = "Workspace"
