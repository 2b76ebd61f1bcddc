"""MFA: required roles reach no page unverified, enrolment, codes (wrong, replayed,
recovery), OTP failures toward the lockout, an administrator's reset, the defaults."""

from __future__ import annotations

import time
from binascii import unhexlify

import pytest
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from compliance.mfa.enrolment import PENDING_KEY
from compliance.models import RecoveryCode
from portal.models import AuditEvent
from tests.factories import PASSWORD
from tests.portal.test_deploy_check import manage, production_env

pytestmark = pytest.mark.django_db
PAGES = ["/", "/changes/", "/approvals/", "/calendar/", "/notifications/", "/mfa/"]


@pytest.fixture
def mfa_on(settings):
    settings.MFA_REQUIRED_ROLES = ["SECURITY", "COMPLIANCE", "OPERATIONS", "ADMIN"]
    return settings


def sign_in(client, username: str):
    response = client.post("/accounts/login/", {"username": username, "password": PASSWORD})
    assert response.status_code == 302, response.content.decode()[:500]
    return response


def code_for(key_hex: str, *, steps_ahead: int = 0) -> str:
    totp = TOTP(unhexlify(key_hex))
    totp.time = time.time() + 30 * steps_ahead
    return f"{totp.token():06d}"


def enrol(client) -> tuple[str, list[str]]:
    page = client.get("/mfa/enrol/")
    assert page.status_code == 200
    key = client.session[PENDING_KEY]
    response = client.post("/mfa/enrol/", {"otp_token": code_for(key), "next": "/"})
    assert response.status_code == 200, response.content.decode()[:800]
    return key, list(response.context["codes"])


@pytest.mark.parametrize("page", PAGES)
def test_a_role_that_requires_mfa_reaches_no_page_before_enrolling(client, mfa_on, security, page):
    sign_in(client, "security")

    response = client.get(page)

    assert response.status_code == 302
    assert response["Location"].startswith("/mfa/enrol/?next=")


def test_an_htmx_request_is_sent_to_enrol_too(client, mfa_on, security):
    sign_in(client, "security")

    response = client.get("/changes/", HTTP_HX_REQUEST="true")

    assert response.status_code == 204
    assert response["HX-Redirect"].startswith("/mfa/enrol/")


def test_enrolment_shows_a_qr_code_and_then_the_pages_open(client, mfa_on, security):
    sign_in(client, "security")

    page = client.get("/mfa/enrol/").content.decode()
    _key, codes = enrol(client)

    assert "<svg" in page and 'aria-label="QR code to scan"' in page
    assert "Your roles require two-factor sign-in" in page
    assert len(codes) == 10 and len(set(codes)) == 10
    assert TOTPDevice.objects.get(user=security).confirmed
    assert RecoveryCode.objects.filter(device__user=security, used_at__isnull=True).count() == 10
    assert not RecoveryCode.objects.filter(code_hash__in=codes).exists()  # hashes only
    for url in PAGES:
        assert client.get(url).status_code == 200, url
    assert AuditEvent.objects.filter(action="mfa.enrolled", username="security").exists()


def test_a_wrong_enrolment_code_is_refused_with_a_message(client, mfa_on, security):
    sign_in(client, "security")
    client.get("/mfa/enrol/")

    response = client.post("/mfa/enrol/", {"otp_token": "000000"})

    assert response.status_code == 400
    assert "does not match" in response.content.decode()
    assert not TOTPDevice.objects.filter(user=security).exists()


def test_every_new_sign_in_asks_for_a_code_and_a_good_one_lets_the_user_in(
    client, mfa_on, security
):
    sign_in(client, "security")
    key, _codes = enrol(client)
    client.post("/accounts/logout/")

    sign_in(client, "security")
    asked = client.get("/approvals/")
    passed = client.post(
        "/mfa/verify/", {"otp_token": code_for(key, steps_ahead=1), "next": "/approvals/"}
    )

    assert asked["Location"] == "/mfa/verify/?next=%2Fapprovals%2F"
    assert passed.status_code == 302 and passed["Location"] == "/approvals/"
    assert client.get("/approvals/").status_code == 200
    assert AuditEvent.objects.get(action="mfa.verified").details == {"method": "totp"}


def test_wrong_and_replayed_codes_are_refused(client, mfa_on, security):
    sign_in(client, "security")
    key, _codes = enrol(client)
    client.post("/accounts/logout/")
    sign_in(client, "security")
    good = code_for(key, steps_ahead=1)

    wrong = client.post("/mfa/verify/", {"otp_token": "123456"})
    client.post("/mfa/verify/", {"otp_token": good})
    client.post("/accounts/logout/")
    sign_in(client, "security")
    replayed = client.post("/mfa/verify/", {"otp_token": good})
    enrolment_code_again = client.post("/mfa/verify/", {"otp_token": code_for(key)})

    assert wrong.status_code == 400 and "not valid" in wrong.content.decode()
    assert replayed.status_code == 400
    assert enrolment_code_again.status_code == 400
    assert client.get("/").status_code == 302
    assert AuditEvent.objects.filter(action="mfa.failed", outcome="FAILURE").count() == 3


def test_a_recovery_code_works_once(client, mfa_on, security):
    sign_in(client, "security")
    _key, codes = enrol(client)
    client.post("/accounts/logout/")

    sign_in(client, "security")
    first = client.post("/mfa/verify/", {"otp_token": codes[0].lower().replace("-", " ")})
    client.post("/accounts/logout/")
    sign_in(client, "security")
    again = client.post("/mfa/verify/", {"otp_token": codes[0]})
    another = client.post("/mfa/verify/", {"otp_token": codes[1]})

    assert first.status_code == 302
    assert again.status_code == 400
    assert another.status_code == 302
    verified = AuditEvent.objects.filter(action="mfa.verified").order_by("sequence")
    assert [e.details["recovery_codes_left"] for e in verified] == [9, 8]


def test_otp_failures_count_toward_the_lockout(client, mfa_on, security):
    sign_in(client, "security")
    enrol(client)
    client.post("/accounts/logout/")
    sign_in(client, "security")

    answers = [client.post("/mfa/verify/", {"otp_token": "000000"}).status_code for _ in range(5)]
    after = client.get("/")
    password_again = client.post("/accounts/login/", {"username": "security", "password": PASSWORD})

    assert answers == [400, 400, 400, 400, 429]
    assert after.status_code == 302 and after["Location"].startswith("/accounts/login/")
    assert password_again.status_code in (403, 429)
    assert AuditEvent.objects.filter(action="auth.lockout", username="security").exists()


def test_a_correct_password_alone_does_not_wipe_the_otp_failures(client, mfa_on, security):
    sign_in(client, "security")
    enrol(client)
    for _ in range(2):
        client.post("/accounts/logout/")
        sign_in(client, "security")
        for _ in range(2):
            client.post("/mfa/verify/", {"otp_token": "000000"})
    client.post("/accounts/logout/")
    sign_in(client, "security")

    fifth = client.post("/mfa/verify/", {"otp_token": "000000"})

    assert fifth.status_code == 429


def test_roles_without_the_requirement_pass_with_a_password(client, mfa_on, requester):
    sign_in(client, "requester")

    assert client.get("/changes/").status_code == 200


def test_admins_need_mfa_when_admin_is_required(client, mfa_on, superuser):
    sign_in(client, "root")

    assert client.get("/admin/")["Location"].startswith("/mfa/enrol/")


def test_someone_who_enrolled_by_choice_is_asked_even_when_not_required(
    client, settings, requester
):
    settings.MFA_REQUIRED_ROLES = []
    sign_in(client, "requester")
    enrol(client)
    client.post("/accounts/logout/")

    sign_in(client, "requester")

    assert client.get("/changes/")["Location"].startswith("/mfa/verify/")


def test_outside_production_a_forced_login_reaches_pages_and_the_page_says_mfa_is_optional(
    client, security
):
    client.force_login(security)

    assert client.get("/approvals/").status_code == 200
    page = client.get("/mfa/").content.decode()
    assert "optional" in page and "MFA_REQUIRED_ROLES" in page


def test_an_administrator_resets_a_users_device_and_it_is_audited(
    client, mfa_on, security, superuser
):
    sign_in(client, "security")
    enrol(client)
    admin = client.__class__()
    admin.force_login(superuser)
    session = admin.session
    # The administrator verified too (ADMIN requires MFA): a device logged in directly.
    device = TOTPDevice.objects.create(user=superuser, name="admin", confirmed=True)
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()

    response = admin.post(
        "/admin/compliance/mfaenrolment/",
        {"action": "reset_mfa", "_selected_action": [security.pk]},
    )

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=security).exists()
    assert not RecoveryCode.objects.filter(device__user=security).exists()
    event = AuditEvent.objects.get(action="mfa.reset")
    assert event.username == "root" and event.details["user"] == "security"
    # The reset user's verified session is no longer verified: enrol again.
    assert client.get("/changes/")["Location"].startswith("/mfa/")


def test_the_otp_device_admin_shows_no_secret_and_deletes_nothing(client, superuser, security):
    device = TOTPDevice.objects.create(user=security, name="phone", confirmed=True)
    client.force_login(superuser)

    page = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/")

    assert page.status_code == 200
    assert device.key not in page.content.decode()
    assert (
        client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_production_requires_mfa_for_approvers_compliance_operations_and_admins(tmp_path):
    script = "from django.conf import settings; print(','.join(settings.MFA_REQUIRED_ROLES))"
    result = manage(["shell", "-c", script], tmp_path, **production_env())

    assert result.returncode == 0, result.stderr
    required = set(result.stdout.strip().splitlines()[-1].split(","))
    assert {
        "SECURITY",
        "ENGINEERING",
        "OPERATIONS",
        "COMPLIANCE",
        "CTO",
        "HEAD_OF_SECURITY",
    } <= required
    assert "ADMIN" in required and "REQUESTER" not in required


def test_a_bad_mfa_role_or_a_missing_signing_key_stops_production_start_up(tmp_path):
    bad_role = manage(["check"], tmp_path, **production_env(MFA_REQUIRED_ROLES="WIZARD"))
    no_key = manage(["check"], tmp_path, **production_env(EVIDENCE_SIGNING_KEY=None))

    assert bad_role.returncode != 0 and "MFA_REQUIRED_ROLES" in bad_role.stderr
    assert no_key.returncode != 0 and "EVIDENCE_SIGNING_KEY" in no_key.stderr
