from django.urls import path

from . import views

urlpatterns = [
    path("login", views.login_view),
    path("logout", views.logout_view),
    path("dashboard", views.dashboard),
    path("debug/session", views.debug_session),
    path("notes", views.notes),
]
