from django.urls import path

from arena.metrics import views

urlpatterns = [path("metrics", views.metrics, name="metrics")]
