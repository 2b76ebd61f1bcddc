"""The enrolment QR code as inline SVG, drawn here: no network, no image file."""

from __future__ import annotations

import io

import qrcode
import qrcode.image.svg
from django.utils.safestring import SafeString, mark_safe


def qr_svg(data: str) -> SafeString:
    image = qrcode.make(
        data,
        image_factory=qrcode.image.svg.SvgPathImage,
        box_size=8,
        border=2,
        error_correction=qrcode.constants.ERROR_CORRECT_M,
    )
    buffer = io.BytesIO()
    image.save(buffer)
    svg = buffer.getvalue().decode("utf-8")
    # Inline in the page: drop the XML declaration; the markup is the library's own
    # paths (the data is encoded as modules, never as text).
    svg = svg[svg.index("<svg") :]
    return mark_safe(svg.replace("<svg ", '<svg role="img" aria-label="QR code to scan" ', 1))  # noqa: S308
