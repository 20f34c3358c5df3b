"""Forms whose validation is one throttled attempt (see `arena.security.throttle`).

The login page, the admin login and the sign-up page validate a form; validating
it is the password check (or the account creation), so that is what is counted.
A throttled form is invalid with one non-field error, code ``throttled``, which
the page shows like any other error; `throttled_response` sets the status.
"""
from __future__ import annotations

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.core.exceptions import ValidationError
from django.forms.utils import ErrorDict
from django.http import HttpRequest, HttpResponse

from arena.security import throttle


class ThrottledFormMixin:
    """Run `full_clean` as `throttle.attempt` for the name in `throttle_name_field`.

    A form with no name is validated without being counted: it guesses nothing.
    """

    throttle_name_field = "username"
    request: HttpRequest | None
    throttled: throttle.Throttled | None = None

    def full_clean(self) -> None:
        name = str(self.data.get(self.throttle_name_field, "")).strip() if self.is_bound else ""
        if not name or self.request is None:
            super().full_clean()
            return
        try:
            throttle.attempt(self.request, name, self._clean_is_valid)
        except throttle.Throttled as error:
            self.throttled = error
            self._errors = ErrorDict()
            self.cleaned_data = {}
            self.add_error(None, ValidationError(error.detail, code=error.code))

    def _clean_is_valid(self) -> bool:
        super().full_clean()
        return not self._errors


class ThrottledAuthenticationForm(ThrottledFormMixin, AuthenticationForm):
    """The login page's form."""


class ThrottledAdminAuthenticationForm(ThrottledFormMixin, AdminAuthenticationForm):
    """The admin login's form."""


class ThrottledUserCreationForm(ThrottledFormMixin, UserCreationForm):
    """The sign-up page's form. A script probing which names are taken fails
    validation and is counted like a wrong password; a sign-up that succeeds is
    not counted (like a successful sign-in)."""

    def __init__(self, *args, request: HttpRequest | None = None, **kwargs) -> None:
        self.request = request
        super().__init__(*args, **kwargs)


def throttled_response(response: HttpResponse, form: forms.BaseForm) -> HttpResponse:
    """The page of a throttled form answers 429 with Retry-After; any other, as it was."""
    error = getattr(form, "throttled", None)
    if error is not None:
        response.status_code = 429
        response["Retry-After"] = str(error.retry_after)
    return response
