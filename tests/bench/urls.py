"""The portal's URLs plus the benchmark's floor: a trivial authenticated page."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.template import engines
from django.urls import path

from portal.urls import handler404  # noqa: F401
from portal.urls import urlpatterns as portal_urlpatterns

# The page every portal page costs at least: session, user, roles, navigation, the base
# template and the middleware, and nothing of its own.
FLOOR = engines["django"].from_string(
    '{% extends "base.html" %}{% block content %}<h1>Floor</h1>{% endblock %}'
)


@login_required
def floor(request: HttpRequest) -> HttpResponse:
    return HttpResponse(FLOOR.render({}, request))


urlpatterns = [path("_bench/floor/", floor, name="bench_floor"), *portal_urlpatterns]
