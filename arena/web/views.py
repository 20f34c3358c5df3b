"""Pages of the browser client.

The views only pick a template: everything about matches is read and changed by
the page's JavaScript through the JSON API (docs/protocol.md and /api/lobby).
"""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth import get_user_model, login
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.contrib.auth.views import LoginView, LogoutView
from django.shortcuts import redirect, render
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_http_methods

from arena.security.forms import ThrottledAuthenticationForm, ThrottledUserCreationForm, throttled_response


class ArenaLoginView(LoginView):
    """Sign-in, throttled (arena.security.throttle): over the limit the page says
    so, with status 429."""

    template_name = "web/login.html"
    redirect_authenticated_user = True
    authentication_form = ThrottledAuthenticationForm

    def form_invalid(self, form):
        return throttled_response(super().form_invalid(form), form)


class ArenaLogoutView(LogoutView):
    """POST only (Django's LogoutView refuses GET)."""


def signup_form_class() -> type[ThrottledUserCreationForm]:
    """The throttled sign-up form on Django's own User; for a project's user model,
    the same form on that model, asking for its login field and a password."""
    user_model = get_user_model()
    if user_model is User:
        return ThrottledUserCreationForm
    login_field = user_model.USERNAME_FIELD

    class SignupForm(ThrottledUserCreationForm):
        throttle_name_field = login_field

        class Meta:
            model = user_model
            fields = (login_field,)

    return SignupForm


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("web:lobby")
    form = signup_form_class()(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend=settings.AUTHENTICATION_BACKENDS[0])
        return redirect("web:lobby")
    return throttled_response(render(request, "web/signup.html", {"form": form}), form)


@login_required
@ensure_csrf_cookie
def lobby(request):
    return render(request, "web/lobby.html")


@login_required
@ensure_csrf_cookie
def play(request, match_id):
    return render(request, "web/game.html", {"match_id": match_id, "mode": "play"})


@login_required
@ensure_csrf_cookie
def watch(request, match_id):
    return render(request, "web/game.html", {"match_id": match_id, "mode": "watch"})


@login_required
def replay(request, match_id):
    """The recorded match played back in the browser. Signed-in users only, like
    the spectator page; the replay API decides who may read the recording."""
    return render(request, "web/replay.html", {"match_id": match_id})
