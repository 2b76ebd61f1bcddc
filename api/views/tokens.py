"""The API tokens section of the Preferences page: create one (shown once), revoke one."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from api import services
from api.forms import TokenForm
from api.models import ApiToken
from portal.errors import Hidden, PortalError
from portal.http import Link, refused


def _preferences() -> Link:
    return Link(url=reverse("portal:preferences"), label="Back to Preferences")


@login_required
@require_POST
@never_cache
def token_create(request: HttpRequest) -> HttpResponse:
    form = TokenForm(request.POST)
    if not form.is_valid():
        return render(request, "api/token_form.html", {"form": form}, status=400)
    try:
        created = services.api_token_create(
            by=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            days=form.cleaned_data["days"],
        )
    except PortalError as exc:
        form.add_error(None, exc.message)
        return render(request, "api/token_form.html", {"form": form}, status=exc.status)
    # Shown on this response only: it is never stored, and this page is not cached.
    response = render(
        request,
        "api/token_created.html",
        {"token": created.token, "key": created.key, "gate": reverse("api:gate")},
    )
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def token_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    token = ApiToken.objects.filter(pk=pk, user=request.user).first()
    if token is None:
        raise Hidden(
            "No such token.",
            user=request.user,
            action="api.token_hidden",
            object_type="api.apitoken",
            object_id=pk,
        )
    try:
        services.api_token_revoke(token=token, by=request.user)
    except PortalError as exc:
        return refused(request, exc, back=_preferences())
    messages.success(request, f"Token {token.display_id} ({token.name}) is revoked.")
    return redirect("portal:preferences")
