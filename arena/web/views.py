"""Pages of the browser client.

The views only pick a template: everything about matches is read and changed by
the page's JavaScript through the JSON API (docs/protocol.md and /api/lobby).
"""
from __future__ import annotations

from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
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


@require_http_methods(["GET", "POST"])
def signup(request):
    if request.user.is_authenticated:
        return redirect("web:lobby")
    form = ThrottledUserCreationForm(request.POST or None, request=request)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
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
