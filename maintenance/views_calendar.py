"""The maintenance calendar (month and week), its iCalendar feed, emergency window
requests and the CTO / Head of Security decisions on them."""

from __future__ import annotations

from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.cache import get_conditional_response
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from changes.forms import DelegateForm
from maintenance import selectors, services
from maintenance.access import can_see_windows, may_request_emergency
from maintenance.calendar_feed import feed_for
from maintenance.calendar_forms import EmergencyWindowForm, WindowDecisionForm
from maintenance.calendar_selectors import active_feed_token, month_calendar, week_calendar
from maintenance.calendar_services import (
    calendar_token_create,
    calendar_token_revoke,
    calendar_token_rotate,
)
from maintenance.models import CalendarFeedToken, MaintenancePolicy, WindowApproval, WindowType
from portal.errors import Hidden, Invalid, PortalError
from portal.http import Link, back_to, refused

# Years the calendar pages; beyond them a date is almost surely a typo in the URL.
FIRST_YEAR, LAST_YEAR = 2000, 2100
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def _calendar_link() -> Link:
    return Link(url=reverse("calendar:month"), label="Back to the calendar")


def _check_calendar(request: HttpRequest) -> None:
    if not can_see_windows(request.user):
        raise PermissionDenied("The maintenance calendar is for people who file or run changes.")


def _refused(request: HttpRequest, message: str, status: int, window=None) -> HttpResponse:
    exc = PortalError(message)
    exc.status = status
    links = [back_to(window), _calendar_link()] if window is not None else [_calendar_link()]
    return refused(request, exc, back=links)


def _is_partial(request: HttpRequest) -> bool:
    # A history restore after hx-push-url asks for the whole page.
    return bool(request.htmx) and not request.htmx.history_restore_request


def _feed_context(request: HttpRequest) -> dict:
    token = active_feed_token(request.user)
    url = ""
    if token is not None:
        # The address the user reached the portal at, not a configured guess.
        url = request.build_absolute_uri(reverse("calendar:feed", kwargs={"token": token.token}))
    return {
        "feed_token": token,
        "feed_url": url,
        "webcal_url": "webcal://" + url.split("://", 1)[-1] if url else "",
    }


def _month_url(day: date) -> str:
    return f"{reverse('calendar:month')}?{urlencode({'year': day.year, 'month': day.month})}"


def _week_url(day: date) -> str:
    return f"{reverse('calendar:week')}?{urlencode({'date': day.isoformat()})}"


def _render_calendar(
    request: HttpRequest, partial: str, context: dict, *, view: str
) -> HttpResponse:
    context.update(
        view=view,
        weekdays=WEEKDAYS,
        tzname=timezone.get_current_timezone_name(),
        week_url=reverse("calendar:week"),
    )
    if _is_partial(request):
        return render(request, partial, context)
    context.update(
        _feed_context(request),
        partial_template=partial,
        can_request_emergency=may_request_emergency(request.user),
    )
    return render(request, "maintenance/calendar.html", context)


def _int_param(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name, "").strip()
    return int(raw) if raw else default


@login_required
@require_GET
@vary_on_headers("HX-Request")
def calendar_month(request: HttpRequest) -> HttpResponse:
    _check_calendar(request)
    today = timezone.localdate()
    try:
        year = _int_param(request, "year", today.year)
        month = _int_param(request, "month", today.month)
    except ValueError:
        year = month = 0
    if not (FIRST_YEAR <= year <= LAST_YEAR and 1 <= month <= 12):
        return _refused(
            request,
            f"Choose a month with a year from {FIRST_YEAR} to {LAST_YEAR} and a month "
            "from 1 to 12.",
            400,
        )
    context = month_calendar(
        user=request.user,
        year=year,
        month=month,
        tz=timezone.get_current_timezone(),
        today=today,
    )
    first = context["month"]
    context["nav"] = {
        "title": f"{first:%B %Y}",
        "prev_label": f"{context['previous']:%B}",
        "next_label": f"{context['next']:%B}",
        "prev_url": _month_url(context["previous"]),
        "next_url": _month_url(context["next"]),
        "today_url": reverse("calendar:month"),
        # Into the week of today when this is today's month, else of the 1st.
        "switch_url": _week_url(today if (today.year, today.month) == (year, month) else first),
    }
    return _render_calendar(request, "maintenance/_calendar_month.html", context, view="month")


@login_required
@require_GET
@vary_on_headers("HX-Request")
def calendar_week(request: HttpRequest) -> HttpResponse:
    _check_calendar(request)
    today = timezone.localdate()
    raw = request.GET.get("date", "").strip()
    try:
        day = date.fromisoformat(raw) if raw else today
    except ValueError:
        day = None
    if day is None or not FIRST_YEAR <= day.year <= LAST_YEAR:
        return _refused(
            request,
            f"Choose a week by a date written YYYY-MM-DD, from {FIRST_YEAR} to {LAST_YEAR}.",
            400,
        )
    context = week_calendar(
        user=request.user, day=day, tz=timezone.get_current_timezone(), today=today
    )
    monday, sunday = context["monday"], context["sunday"]
    context["nav"] = {
        "title": f"Week of {monday:%d %b} – {sunday:%d %b %Y}",
        "prev_label": "Previous week",
        "next_label": "Next week",
        "prev_url": _week_url(context["previous"]),
        "next_url": _week_url(context["next"]),
        "today_url": reverse("calendar:week"),
        "switch_url": _month_url(monday),
    }
    return _render_calendar(request, "maintenance/_calendar_week.html", context, view="week")


@require_GET
def calendar_feed(request: HttpRequest, token: str) -> HttpResponse:
    """No session here: calendar apps fetch it. The token is the credential, and it
    serves only while active and while its owner may still see the calendar."""
    feed_token = (
        CalendarFeedToken.objects.select_related("user")
        .filter(token=token, revoked_at__isnull=True)
        .first()
    )
    if feed_token is None or not can_see_windows(feed_token.user):
        raise Http404("No such calendar feed.")
    body, etag = feed_for(user=feed_token.user, base_url=request.build_absolute_uri("/"))
    response = get_conditional_response(request, etag=etag) or HttpResponse(
        body, content_type="text/calendar; charset=utf-8"
    )
    response["ETag"] = etag
    response["Content-Disposition"] = 'inline; filename="maintenance.ics"'
    response["Cache-Control"] = "private, max-age=300"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


FEED_ACTIONS = {
    "create": (calendar_token_create, "Your calendar feed URL is ready."),
    "rotate": (
        calendar_token_rotate,
        "A new feed URL is ready; the old one no longer works. Update your calendar app.",
    ),
    "revoke": (calendar_token_revoke, "Your calendar feed URL is revoked."),
}


@login_required
@require_POST
def calendar_token(request: HttpRequest) -> HttpResponse:
    _check_calendar(request)
    action = FEED_ACTIONS.get(request.POST.get("action", ""))
    if action is None:
        return _refused(request, "Choose to create, rotate or revoke the feed URL.", 400)
    service, done = action
    service(user=request.user)
    if request.htmx:
        return render(
            request,
            "maintenance/_calendar_feed.html",
            {**_feed_context(request), "feed_message": done},
        )
    messages.success(request, done)
    return redirect("calendar:month")


def _default_start(policy: MaintenancePolicy):
    """The earliest allowed start rounded up to the quarter hour, in the viewer's zone."""
    earliest = timezone.localtime() + timedelta(minutes=policy.min_notice_minutes + 5)
    rounded = earliest.replace(second=0, microsecond=0) + timedelta(minutes=-earliest.minute % 15)
    return rounded.strftime("%Y-%m-%dT%H:%M")


@login_required
@require_http_methods(["GET", "POST"])
def emergency_new(request: HttpRequest) -> HttpResponse:
    if not may_request_emergency(request.user):
        raise PermissionDenied("Your roles do not allow requesting emergency windows.")
    policy = MaintenancePolicy.objects.get(type=WindowType.EMERGENCY)
    form = EmergencyWindowForm(
        request.POST or None, policy=policy, initial={"start": _default_start(policy)}
    )
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            try:
                window = services.emergency_window_request(
                    by=request.user,
                    start=form.cleaned_data["start"],
                    duration_minutes=form.cleaned_data["duration_minutes"],
                    reason=form.cleaned_data["reason"],
                )
            except PortalError as exc:
                form.add_error(None, exc.message)
                status = exc.status
            else:
                messages.success(
                    request,
                    f"{window.label} requested. The {_approver_names(policy)} are asked "
                    "to approve it; nothing runs in it before they do.",
                )
                # A requester without a calendar role may not open the window page.
                if can_see_windows(request.user):
                    return redirect(window.get_absolute_url())
                return redirect("portal:dashboard")
    return render(
        request, "maintenance/emergency_new.html", {"form": form, "policy": policy}, status=status
    )


def _approver_names(policy: MaintenancePolicy) -> str:
    labels = dict(WindowApproval._meta.get_field("role").choices)
    return " and ".join(labels.get(role, role) for role in policy.approver_roles)


def _window_approval(request: HttpRequest, pk: int) -> WindowApproval:
    _check_calendar(request)
    approval = WindowApproval.objects.select_related("window").filter(pk=pk).first()
    if approval is None:
        raise Hidden(
            "No such window approval.",
            user=request.user,
            action="window.hidden",
            object_type="maintenance.windowapproval",
            object_id=pk,
        )
    return approval


@login_required
@require_POST
def window_decide(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _window_approval(request, pk)
    form = WindowDecisionForm(request.POST)
    error, status = None, 200
    if not form.is_valid():
        error = " ".join(m for messages_ in form.errors.values() for m in messages_)
        status = 400
    else:
        try:
            services.window_approval_decide(
                approval=approval,
                by=request.user,
                decision=form.cleaned_data["decision"],
                comment=form.cleaned_data.get("comment", ""),
                version=form.cleaned_data.get("version"),
            )
        except PortalError as exc:
            error, status = exc.message, exc.status
    window = selectors.window_detail(approval.window_id)
    if request.htmx:
        response = render(
            request,
            "maintenance/_window_approvals.html",
            {
                "window": window,
                "approvals": selectors.window_approvals(window),
                "error": error,
                "decided": error is None,
                "form": form if error else None,
                "failed_approval": approval.pk if error else None,
            },
            status=status,
        )
        if error is None:
            response["HX-Trigger"] = "window-decided"
        return response
    if error is not None:
        return _refused(request, error, status, window=window)
    messages.success(
        request, f"Your decision is recorded. The window is {window.get_status_display().lower()}."
    )
    return redirect(window.get_absolute_url())


@login_required
@require_POST
def window_delegate(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _window_approval(request, pk)
    window = approval.window
    form = DelegateForm(request.POST)
    try:
        if not form.is_valid():
            raise Invalid.from_form(form)
        User = get_user_model()
        to_user = User.objects.filter(username=form.cleaned_data["username"]).first()
        if to_user is None:
            raise Invalid("No user with that username.")
        services.window_approval_delegate(
            approval=approval, by=request.user, to_user=to_user, days=form.cleaned_data["days"]
        )
    except PortalError as exc:
        return refused(request, exc, back=[back_to(window), _calendar_link()])
    messages.success(request, f"Delegated to {to_user.get_username()}.")
    return redirect(window.get_absolute_url())


@login_required
@require_POST
def window_revoke(request: HttpRequest, pk: int) -> HttpResponse:
    approval = _window_approval(request, pk)
    try:
        services.window_approval_delegation_revoke(approval=approval, by=request.user)
    except PortalError as exc:
        return refused(request, exc, back=[back_to(approval.window), _calendar_link()])
    messages.success(request, "The delegation is revoked.")
    return redirect(approval.window.get_absolute_url())
