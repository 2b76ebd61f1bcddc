"""Concurrent state transitions under threads (issue 16, item 1).

django-fsm-2's ``refresh_from_db`` switched the protection of the state field off and on
again on the field object every thread shares; under gunicorn's threads one request's
refresh re-armed it in the middle of another's, which then answered 500 ("Direct state
modification is not allowed") with its draft saved but not submitted.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from changes.models import ChangeRequest, State
from maintenance.models import MaintenanceWindow
from tests.bench.drills.harness import Client, Processes, portal_env, run_at_once, start_web
from tests.factories import ChangeRequestFactory

pytestmark = pytest.mark.xdist_group("threaded_transitions")


def _window() -> MaintenanceWindow:
    return MaintenanceWindow.objects.create(
        type="EMERGENCY", start=timezone.now() + timedelta(days=3), duration_minutes=60
    )


@pytest.mark.parametrize("make", [ChangeRequestFactory, _window], ids=["change", "window"])
def test_refreshing_in_threads_never_unprotects_the_shared_state_field(transactional_db, make):
    """While real threads refresh real rows, the state field every thread shares stays
    protected the whole time; each refresh reads the state again."""
    rows = [make() for _ in range(4)]
    model = type(rows[0])
    field = next(f for f in model._meta.concrete_fields if getattr(f, "protected", False))
    unprotected = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []

    def watch() -> None:
        while not stop.is_set():
            if not field.protected:
                unprotected.set()

    def refresh(pk: int) -> None:
        try:
            row = model.objects.get(pk=pk)
            for _ in range(100):
                row.refresh_from_db()
            with pytest.raises(AttributeError, match=r"Direct .* modification"):
                setattr(row, field.attname, "x")
        except BaseException as exc:  # collected, asserted below
            errors.append(exc)
        finally:
            connection.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        run_at_once([lambda pk=r.pk: refresh(pk) for r in rows])
    finally:
        stop.set()
        watcher.join()
    assert errors == []
    assert not unprotected.is_set()


def test_a_refresh_reads_the_state_again_and_keeps_the_guard(db):
    change = ChangeRequestFactory()
    ChangeRequest.objects.filter(pk=change.pk).update(state=State.SUBMITTED)
    change.refresh_from_db()
    assert change.state == State.SUBMITTED
    with pytest.raises(AttributeError, match="Direct state modification"):
        change.state = State.APPROVED
    # A partial refresh works too, and the guard still holds after it.
    ChangeRequest.objects.filter(pk=change.pk).update(version=7)
    change.refresh_from_db(fields=["version"])
    assert (change.state, change.version) == (State.SUBMITTED, 7)
    with pytest.raises(AttributeError, match="Direct state modification"):
        change.state = State.APPROVED


@pytest.fixture
def web_on_postgresql(transactional_db, tmp_path) -> Iterator[tuple[Processes, str]]:
    """gunicorn as runportal starts it (2 processes × 4 threads) on the test database."""
    db = connection.settings_dict
    processes = Processes(
        portal_env(
            database_url=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            broker_url="filesystem://",
            var_dir=tmp_path,
        ),
        tmp_path,
    )
    try:
        yield processes, start_web(processes)
    finally:
        processes.stop_all()


def test_threads_submitting_changes_at_once_never_answer_500(web_on_postgresql):
    processes, base_url = web_on_postgresql
    seeded = processes.python(
        "from tests.bench.drills import seed\n"
        "print(json.dumps(seed.requesters(clients=24, approvers=1)))"
    )
    drafts = processes.python(
        "from changes.models import ChangeRequest\n"
        "from django.contrib.auth import get_user_model\n"
        "from portal.models import Component, Tenant\n"
        "from tests.factories import ChangeRequestFactory\n"
        f"tenant = Tenant.objects.get(pk={seeded['tenant']})\n"
        f"component = Component.objects.get(pk={seeded['component']})\n"
        "users = get_user_model().objects.filter(username__startswith="
        f"'req-{seeded['run']}-').order_by('pk')\n"
        "ids = [ChangeRequestFactory(requester=u, tenants=[tenant], components=[component],"
        " type='SECURITY', priority='LOW').pk for u in users for _ in range(3)]\n"
        "print(json.dumps(ids))"
    )
    clients = []
    for index, session in enumerate(seeded["sessions"]):
        client = Client(base_url, timeout=120)
        client.use_session(session)
        clients.append((client, drafts[index * 3 : index * 3 + 3]))
    prepared = []
    for client, ids in clients:
        for pk in ids:
            _, token = client.form_token(f"/changes/{pk}/")
            prepared.append((client, pk, token))
    statuses: Counter = Counter()
    lock = threading.Lock()

    def submit(client: Client, pk: int, token: str) -> None:
        answer = client.post(f"/changes/{pk}/submit/", {"csrfmiddlewaretoken": token})
        with lock:
            statuses[answer.status] += 1

    # Each client's three submits go one after another on its connection; the 24
    # clients run at the same moment, so gunicorn's 8 threads share the field.
    run_at_once(
        [
            lambda c=c, items=[(p, t) for cc, p, t in prepared if cc is c]: [
                submit(c, p, t) for p, t in items
            ]
            for c, _ in clients
        ]
    )
    assert statuses == {302: len(drafts)}, statuses
    states = processes.python(
        "from changes.models import ChangeRequest\n"
        f"print(json.dumps(sorted(set(ChangeRequest.objects.filter(pk__in={drafts!r})"
        ".values_list('state', flat=True)))))"
    )
    assert states == [State.IN_REVIEW]
