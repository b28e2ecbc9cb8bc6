from django.apps import AppConfig


class PipelineConfig(AppConfig):
    name = "salesloop.pipeline"
    label = "pipeline"
    verbose_name = "销售流程"
