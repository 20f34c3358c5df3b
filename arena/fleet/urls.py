from django.urls import path

from arena.fleet import api

urlpatterns = [
    path("hosts", api.HostListView.as_view(), name="api-hosts"),
    path("hosts/<str:name>/drain", api.HostDrainView.as_view(), name="api-host-drain"),
]
