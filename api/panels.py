"""What the API app shows on portal pages: its docs in the navigation, the tokens section
on Preferences."""

from __future__ import annotations

from api.forms import TokenForm
from api.models import ApiToken
from portal import registry


def _tokens(request) -> dict:
    return {
        "tokens": list(ApiToken.objects.filter(user=request.user).order_by("-created_at")[:50]),
        "token_form": TokenForm(),
    }


def register() -> None:
    registry.register_nav("API", "api:docs", allowed=lambda user: user.is_authenticated, order=90)
    registry.register_preferences_panel("api_tokens", "api/_tokens.html", _tokens, order=10)
