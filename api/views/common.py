"""Helpers every API view shares."""

from __future__ import annotations

from rest_framework import exceptions, serializers
from rest_framework.views import APIView

from portal.errors import Hidden


def hidden(request, what: str, object_type: str, pk, *, action: str = "") -> Hidden:
    """The 404 of an object the user may not see (or that does not exist), audited with
    the same action as the page's."""
    return Hidden(
        f"No such {what}.",
        user=request.user,
        action=action or f"{object_type.split('.')[-1]}.hidden",
        object_type=object_type,
        object_id=pk,
    )


def valid(serializer_class: type[serializers.Serializer], request) -> dict:
    """The request body read by the serializer, or a 400 problem naming each field. A
    body that is not a JSON object is refused the same way."""
    data = request.data
    if not isinstance(data, dict):
        raise serializers.ValidationError({"non_field_errors": ["Send a JSON object."]})
    serializer = serializer_class(data=data, context={"request": request})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class UnknownView(APIView):
    """Any other path under /api/ (an id that is not a number, a misspelt resource): a
    problem-details 404 like every API error, not the pages' HTML one. No token is
    needed to learn that a path does not exist, and none is counted or audited."""

    authentication_classes = []
    permission_classes = []
    schema = None

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        raise exceptions.NotFound(f"No such API endpoint: {request.method} {request.path}.")
