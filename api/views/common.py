"""Helpers every API view shares."""

from __future__ import annotations

from rest_framework import serializers

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
