from django.urls import path

from arena.web import views

app_name = "web"

urlpatterns = [
    path("", views.lobby, name="lobby"),
    path("login/", views.ArenaLoginView.as_view(), name="login"),
    path("logout/", views.ArenaLogoutView.as_view(), name="logout"),
    path("signup/", views.signup, name="signup"),
    path("play/<uuid:match_id>/", views.play, name="play"),
    path("watch/<uuid:match_id>/", views.watch, name="watch"),
    path("replay/<uuid:match_id>/", views.replay, name="replay"),
]
