from django.urls import path

from salesloop.intake import hooks, views

urlpatterns = [
    path("hooks/<slug:slug>", hooks.hook, name="intake-hook"),
    path("f/<slug:slug>", views.web_form_page, name="intake-form"),
]
