from django.contrib import admin
from django.urls import include, path

from salesloop.api import api
from salesloop.core.views import healthz

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", api.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("healthz", healthz, name="healthz"),
    path("", include("salesloop.intake.urls")),
    path("intake/imports/", include("salesloop.intake.imports.urls")),
    path("intake/", include("salesloop.intake.page_urls")),
    path("routing/", include("salesloop.routing.urls")),
    path("pipelines/", include("salesloop.pipeline.urls")),
    path("health/", include("salesloop.health.urls")),
    path("alerts/", include("salesloop.notify.urls")),
    path("insights/", include("salesloop.insights.urls")),  # C5: the funnel heat map and cycle time
    path("insights/indicators/", include("salesloop.insights.indicators_urls")),  # C9
    path("", include("salesloop.accounts.urls")),
    path("", include("salesloop.workspace.urls")),  # C10.1: custom fields, the lead export
    path("", include("salesloop.crm.urls")),
    path("", include("salesloop.engagement.urls")),  # C3.4: the lead page's panel and /d/<token>
]
