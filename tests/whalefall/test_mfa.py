"""Two-factor sign-in for the admin: enrolment, the code after the password, required groups,
the login limiter on wrong codes and the administrators' reset."""

import re
import time

import pytest
from auditlog.models import LogEntry
from django.contrib.auth import SESSION_KEY
from django.test import override_settings
from django_otp.oath import TOTP
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD, UserFactory
from whalefall import mfa
from whalefall.models import LoginEvent

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/"
VERIFY = "/admin/two-factor/verify/"
ENROL = "/admin/two-factor/set-up/"
SETUP = "/admin/two-factor/"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)")


def code_for(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code the user's app shows now (or ``steps_ahead`` periods later, for a second
    sign-in within the same 30 seconds: a code is accepted once)."""
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + steps_ahead * device.step
    return f"{totp.token():06d}"


def enrolled(user) -> TOTPDevice:
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    mfa.backup_codes_renew(user)
    return device


def password_step(client, username, ip="198.51.100.10", next_url="/admin/"):
    return client.post(
        LOGIN,
        {"username": username, "password": PASSWORD, "next": next_url},
        REMOTE_ADDR=ip,
    )


def signed_in(client) -> bool:
    return SESSION_KEY in client.session


# --- Signing in ---------------------------------------------------------------------------


def test_without_a_device_the_password_alone_signs_in(client):
    UserFactory(username="plain")
    response = password_step(client, "plain")
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert signed_in(client)


def test_with_a_device_the_password_leads_to_the_code_not_to_a_session(client):
    user = UserFactory(username="alice")
    device = enrolled(user)
    response = password_step(client, "alice", next_url="/admin/inventory/instance/")
    assert response.status_code == 302
    assert response["Location"] == VERIFY
    # Nothing is reachable between the password and the code.
    assert not signed_in(client)
    assert client.get("/admin/").status_code == 302
    assert client.get("/admin/inventory/instance/")["Location"].startswith(LOGIN)
    assert not LoginEvent.objects.filter(kind=LoginEvent.Kind.SUCCEEDED).exists()

    page = client.get(VERIFY)
    assert page.status_code == 200
    assert "alice" in page.content.decode()
    response = client.post(VERIFY, {"code": code_for(device)})
    assert response.status_code == 302
    assert response["Location"] == "/admin/inventory/instance/"
    assert signed_in(client)
    assert client.get("/admin/").status_code == 200
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.SUCCEEDED, user=user).count() == 1


def test_a_wrong_code_is_a_failed_login(client):
    user = UserFactory(username="bob")
    enrolled(user)
    password_step(client, "bob")
    response = client.post(VERIFY, {"code": "000000"})
    assert response.status_code == 200
    assert "not valid" in response.content.decode()
    assert not signed_in(client)
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.FAILED, user=user).count() == 1


@override_settings(
    WHALEFALL_LOGIN_RATE_IP="1000/h",
    WHALEFALL_LOGIN_RATE_USERNAME="3/h",
    OTP_TOTP_THROTTLE_FACTOR=0,
)
def test_wrong_codes_are_counted_by_the_login_limiter(client):
    """Guessing codes from many addresses runs into the username's limit; after it, even
    the right code is refused."""
    user = UserFactory(username="carol")
    device = enrolled(user)
    password_step(client, "carol", ip="198.51.100.1")
    statuses = [
        client.post(VERIFY, {"code": f"{n:06d}"}, REMOTE_ADDR=f"203.0.113.{n}").status_code
        for n in range(1, 5)
    ]
    assert statuses == [200, 200, 200, 429]
    response = client.post(VERIFY, {"code": code_for(device)}, REMOTE_ADDR="203.0.113.99")
    assert response.status_code == 429
    assert not signed_in(client)
    assert LoginEvent.objects.filter(kind=LoginEvent.Kind.RATE_LIMITED, username="carol").exists()


@override_settings(
    WHALEFALL_LOGIN_RATE_IP="1000/h",
    WHALEFALL_LOGIN_RATE_USERNAME="3/h",
    OTP_TOTP_THROTTLE_FACTOR=0,
)
def test_the_password_again_does_not_buy_more_code_guesses(client):
    """Only a complete sign-in starts the username's count afresh: someone who knows the
    password cannot re-enter it between guesses."""
    user = UserFactory(username="mallory-target")
    enrolled(user)
    for guess in ("111111", "222222", "333333"):
        assert password_step(client, "mallory-target")["Location"] == VERIFY
        assert client.post(VERIFY, {"code": guess}).status_code == 200
    assert password_step(client, "mallory-target").status_code == 429
    assert not signed_in(client)


@override_settings(WHALEFALL_LOGIN_RATE_USERNAME="3/h", OTP_TOTP_THROTTLE_FACTOR=0)
def test_a_complete_sign_in_starts_the_count_afresh(client):
    user = UserFactory(username="oscar")
    device = enrolled(user)
    password_step(client, "oscar")
    client.post(VERIFY, {"code": "000000"})
    client.post(VERIFY, {"code": "000001"})
    assert client.post(VERIFY, {"code": code_for(device)}).status_code == 302
    client.logout()
    password_step(client, "oscar")
    client.post(VERIFY, {"code": "000000"})
    client.post(VERIFY, {"code": "000001"})
    assert client.post(VERIFY, {"code": code_for(device, steps_ahead=1)}).status_code == 302


def test_a_backup_code_signs_in_once(client):
    user = UserFactory(username="dave")
    enrolled(user)
    code = StaticToken.objects.filter(device__user=user).first().token
    password_step(client, "dave")
    assert client.post(VERIFY, {"code": code.upper()}).status_code == 302
    assert signed_in(client)
    client.logout()

    password_step(client, "dave")
    assert client.post(VERIFY, {"code": code}).status_code == 200
    assert not signed_in(client)


def test_another_users_code_does_not_open_an_account(client):
    victim = UserFactory(username="victim")
    enrolled(victim)
    attacker = UserFactory(username="attacker")
    attacker_device = enrolled(attacker)
    attacker_backup = StaticToken.objects.filter(device__user=attacker).first().token
    password_step(client, "victim")
    assert client.post(VERIFY, {"code": code_for(attacker_device)}).status_code == 200
    assert client.post(VERIFY, {"code": attacker_backup}).status_code == 200
    assert not signed_in(client)


@pytest.mark.parametrize(
    "code",
    [
        "".join(chr(0xFF11 + n) for n in range(6)),  # fullwidth digits: int() reads them
        " 12345 6\x00",
        "1" * 5000,
        "-123456",
        "${jndi:x}",
        "",
    ],
)
def test_malformed_codes_are_a_form_error(client, code):
    user = UserFactory(username="erin")
    device = enrolled(user)
    password_step(client, "erin")
    response = client.post(VERIFY, {"code": code})
    assert response.status_code == 200
    assert not signed_in(client)
    device.refresh_from_db()
    assert device.last_used_at is None


def test_fullwidth_digits_of_the_right_code_are_refused(client):
    user = UserFactory(username="frank")
    device = enrolled(user)
    password_step(client, "frank")
    fullwidth = "".join(chr(0xFF10 + int(digit)) for digit in code_for(device))
    assert client.post(VERIFY, {"code": fullwidth}).status_code == 200
    assert not signed_in(client)


def test_the_held_sign_in_expires(client, monkeypatch):
    user = UserFactory(username="gina")
    device = enrolled(user)
    password_step(client, "gina")
    later = time.time() + mfa.PENDING_SECONDS + 1
    monkeypatch.setattr(mfa.time, "time", lambda: later)
    response = client.post(VERIFY, {"code": code_for(device)})
    assert response.status_code == 302
    assert response["Location"] == "/admin/login/"
    assert not signed_in(client)


def test_the_code_page_without_a_password_step_goes_to_the_login(client):
    assert client.get(VERIFY)["Location"] == "/admin/login/"
    assert client.post(VERIFY, {"code": "123456"})["Location"] == "/admin/login/"
    assert client.get(ENROL)["Location"] == "/admin/login/"


def test_a_code_held_for_one_user_is_not_given_to_a_new_password_of_another(client):
    """The held sign-in belongs to the person who typed the password; a new password step
    replaces it."""
    alice = UserFactory(username="alice2")
    enrolled(alice)
    UserFactory(username="plain2")
    password_step(client, "alice2")
    password_step(client, "plain2")
    assert client.session[SESSION_KEY] == str(UserFactory(username="plain2").pk)
    assert mfa.PENDING_SESSION_KEY not in client.session


# --- Enrolment ----------------------------------------------------------------------------


def test_a_signed_in_user_enrols_from_the_admin(client):
    user = UserFactory(username="henry")
    client.force_login(user)
    assert 'href="/admin/two-factor/"' in client.get("/admin/").content.decode()
    assert "is off" in client.get(SETUP).content.decode()

    page = client.get(ENROL).content.decode()
    device = TOTPDevice.objects.get(user=user)
    assert not device.confirmed
    # The QR code is an inline SVG element: nothing a strict CSP would block.
    assert "<svg" in page
    assert "<path" in page
    assert not INLINE_SCRIPT.search(page)
    assert "data:" not in page
    assert 'style="' not in page.split("<svg")[1]
    assert mfa.readable_key(device) in page
    # The same unconfirmed device until it is confirmed: a reload does not change the key.
    assert client.get(ENROL).status_code == 200
    assert TOTPDevice.objects.filter(user=user).count() == 1

    response = client.post(ENROL, {"code": "000000"})
    assert response.status_code == 200
    device.refresh_from_db()
    assert not device.confirmed

    with override_settings(OTP_TOTP_THROTTLE_FACTOR=0):
        response = client.post(ENROL, {"code": code_for(device)})
    assert response.status_code == 200
    device.refresh_from_db()
    assert device.confirmed
    codes = response.context["codes"]
    assert len(codes) == mfa.BACKUP_CODE_COUNT
    assert all(code in response.content.decode() for code in codes)
    # The session that enrolled is verified: it stays open.
    assert client.get("/admin/").status_code == 200
    assert "is on" in client.get(SETUP).content.decode()
    assert StaticDevice.objects.filter(user=user).count() == 1

    # And the next sign-in asks for the code.
    client.logout()
    assert password_step(client, "henry")["Location"] == VERIFY


def test_new_backup_codes_replace_the_old_ones(client):
    user = UserFactory(username="ivy")
    device = enrolled(user)
    old = set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True))
    password_step(client, "ivy")
    client.post(VERIFY, {"code": code_for(device)})
    response = client.post(SETUP, {"backup_codes": "1"})
    new = set(response.context["codes"])
    assert len(new) == mfa.BACKUP_CODE_COUNT
    assert set(StaticToken.objects.filter(device__user=user).values_list("token", flat=True)) == new
    assert not old & new


def test_the_setup_pages_need_a_staff_session(client):
    assert client.get(SETUP)["Location"].startswith(LOGIN)
    client.force_login(UserFactory(username="nostaff", is_staff=False))
    assert client.get(SETUP)["Location"].startswith(LOGIN)
    assert client.get(ENROL)["Location"] == "/admin/login/"


# --- Required groups ----------------------------------------------------------------------


@pytest.fixture
def administrators_required(roles):
    with override_settings(WHALEFALL_MFA_REQUIRED_GROUPS=["Administrators"]):
        yield


@pytest.mark.usefixtures("administrators_required")
def test_a_required_group_member_enrols_before_anything_else(client, user_with_role):
    user = user_with_role("Administrators", username="root2")
    response = password_step(client, "root2", next_url="/admin/inventory/instance/")
    assert response["Location"] == ENROL
    assert not signed_in(client)
    for url in ("/admin/", "/admin/auth/user/", SETUP, "/admin/inventory/instance/"):
        assert client.get(url).status_code == 302, url
    assert not signed_in(client)

    page = client.get(ENROL).content.decode()
    assert "requires two-factor sign-in" in page
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    response = client.post(ENROL, {"code": code_for(device)})
    assert response.status_code == 200
    assert len(response.context["codes"]) == mfa.BACKUP_CODE_COUNT
    assert response.context["next_url"] == "/admin/inventory/instance/"
    assert signed_in(client)
    assert client.get("/admin/").status_code == 200
    # The required user may not turn it off.
    client.post(SETUP, {"turn_off": "1"})
    assert TOTPDevice.objects.filter(user=user, confirmed=True).exists()


@pytest.mark.usefixtures("administrators_required")
def test_superusers_count_as_administrators(client):
    UserFactory(username="super", is_superuser=True)
    assert password_step(client, "super")["Location"] == ENROL
    assert not signed_in(client)


@pytest.mark.usefixtures("administrators_required")
def test_other_roles_are_not_required(client, user_with_role):
    user_with_role("DBAs", username="dba")
    assert password_step(client, "dba")["Location"] == "/admin/"
    assert signed_in(client)


@pytest.mark.usefixtures("administrators_required")
def test_an_open_session_of_a_newly_required_member_ends(client, user_with_role):
    user = user_with_role("DBAs", username="promoted")
    password_step(client, "promoted")
    assert client.get("/admin/").status_code == 200
    from django.contrib.auth.models import Group

    user.groups.add(Group.objects.get(name="Administrators"))
    assert client.get("/admin/").status_code == 302
    assert not signed_in(client)
    assert password_step(client, "promoted")["Location"] == ENROL


def test_a_session_that_skipped_the_code_ends(client):
    """A session opened before the user enrolled (another browser) cannot skip the code."""
    user = UserFactory(username="twobrowsers")
    client.force_login(user)
    assert client.get("/admin/").status_code == 200
    enrolled(user)
    assert client.get("/admin/").status_code == 302
    assert not signed_in(client)


# --- Reset by an administrator --------------------------------------------------------------


def test_an_administrator_resets_a_users_device_and_the_audit_log_records_it(client, admin_user):
    user = UserFactory(username="lostphone")
    device = enrolled(user)
    client.force_login(admin_user)
    changelist = client.get("/admin/otp_totp/totpdevice/").content.decode()
    assert "lostphone" in changelist
    change = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/change/").content.decode()
    assert device.key not in change
    assert mfa.readable_key(device).replace(" ", "") not in change
    # django-otp's configuration and QR code pages of other users' devices are gone.
    for view in ("config", "qrcode"):
        response = client.get(f"/admin/otp_totp/totpdevice/{device.pk}/{view}/", follow=True)
        assert b"otpauth" not in response.content
        assert "svg" not in response["Content-Type"]

    response = client.post(
        "/admin/otp_totp/totpdevice/",
        {"action": "reset_two_factor", "_selected_action": [device.pk]},
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=user).exists()
    assert not StaticDevice.objects.filter(user=user).exists()
    entries = LogEntry.objects.filter(
        action=LogEntry.Action.DELETE, actor=admin_user, content_type__app_label="otp_totp"
    )
    assert entries.count() == 1
    assert device.key not in str(entries.get().changes)
    assert LogEntry.objects.filter(
        action=LogEntry.Action.DELETE, actor=admin_user, content_type__app_label="otp_static"
    ).exists()
    # The user signs in with the password again (and may enrol anew).
    client.logout()
    assert password_step(client, "lostphone")["Location"] == "/admin/"


def test_deleting_a_device_resets_everything(client, admin_user):
    user = UserFactory(username="lostphone2")
    device = enrolled(user)
    client.force_login(admin_user)
    response = client.post(f"/admin/otp_totp/totpdevice/{device.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not StaticDevice.objects.filter(user=user).exists()


def test_the_device_admin_adds_and_edits_nothing(client, admin_user):
    user = UserFactory(username="target")
    device = enrolled(user)
    client.force_login(admin_user)
    assert client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
    response = client.post(
        f"/admin/otp_totp/totpdevice/{device.pk}/change/",
        {"user": admin_user.pk, "name": "stolen", "confirmed": "on", "key": "00" * 20},
    )
    assert response.status_code == 403
    device.refresh_from_db()
    assert device.user == user
    assert client.get("/admin/otp_static/staticdevice/").status_code == 404


@pytest.mark.parametrize("role", ["DBAs", "Auditors", "Schedulers", "Viewers"])
def test_other_roles_cannot_reset_devices(client, user_with_role, role):
    device = enrolled(UserFactory(username="someone"))
    client.force_login(user_with_role(role))
    response = client.post(
        "/admin/otp_totp/totpdevice/",
        {"action": "reset_two_factor", "_selected_action": [device.pk]},
    )
    assert response.status_code == 403
    assert TOTPDevice.objects.filter(pk=device.pk).exists()


def test_a_reset_ends_the_verified_session_of_a_required_member(client, user_with_role, roles):
    user = user_with_role("Administrators", username="resetme")
    device = enrolled(user)
    with override_settings(WHALEFALL_MFA_REQUIRED_GROUPS=["Administrators"]):
        password_step(client, "resetme")
        client.post(VERIFY, {"code": code_for(device)})
        assert client.get("/admin/").status_code == 200
        mfa.devices_reset(user=user, actor=None)
        assert client.get("/admin/").status_code == 302
        assert not signed_in(client)


# --- Pages under a strict Content-Security-Policy --------------------------------------------

INLINE_HANDLER = re.compile(r"\son[a-z]+\s*=", re.IGNORECASE)


def assert_no_inline_code(page: str) -> None:
    assert not INLINE_SCRIPT.search(page)
    assert not INLINE_HANDLER.search(page)
    assert "<style" not in page
    assert "javascript:" not in page
    assert 'src="data:' not in page


def test_every_two_factor_page_works_without_inline_code(client):
    user = UserFactory(username="csp")
    client.force_login(user)
    pages = {"setup (off)": client.get(SETUP), "enrol": client.get(ENROL)}
    device = TOTPDevice.objects.get(user=user)
    with override_settings(OTP_TOTP_THROTTLE_FACTOR=0):
        pages["backup codes"] = client.post(ENROL, {"code": code_for(device)})
    pages["setup (on)"] = client.get(SETUP)
    client.logout()
    pages["login"] = client.get(LOGIN)
    password_step(client, "csp")
    pages["verify"] = client.get(VERIFY)
    for name, response in pages.items():
        assert response.status_code == 200, name
        assert_no_inline_code(response.content.decode())
