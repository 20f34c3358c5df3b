from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from arena.security.forms import ThrottledAdminAuthenticationForm

admin.site.login_form = ThrottledAdminAuthenticationForm  # the admin login is throttled like the others

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("arena.matches.urls")),
    path("api/", include("arena.lobby.urls")),
    path("api/", include("arena.fleet.urls")),
    path("", include("arena.metrics.urls")),
    path("", include("arena.web.urls")),
]

handler404 = "arena.matches.http_errors.not_found"
handler500 = "arena.matches.http_errors.server_error"
