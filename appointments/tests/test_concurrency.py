"""Twenty people booking one slot at the same instant against real PostgreSQL: one 201, nineteen 409s, one row."""

import threading

import pytest
from django.db import connection, connections
from rest_framework.test import APIClient

from accounts.tests.factories import UserFactory
from appointments.models import Appointment
from appointments.tests.factories import AppointmentTypeFactory, a_slot
from conftest import bearer

THREADS = 20


@pytest.mark.django_db(transaction=True)
def test_twenty_threads_booking_one_slot_end_with_one_201_and_nineteen_409s():
    if connection.vendor != "postgresql":
        pytest.skip("the guard under test is PostgreSQL's exclusion constraint")
    kind = AppointmentTypeFactory()
    start = a_slot()
    clients = [bearer(APIClient(), UserFactory()) for _ in range(THREADS)]
    body = {"provider": str(kind.provider.pk), "appointment_type": str(kind.pk), "starts_at": start.isoformat()}
    # The schema check of every test response builds the OpenAPI document once per process; not in the threads.
    assert clients[0].get("/api/v1/providers/").status_code == 200
    barrier = threading.Barrier(THREADS)
    answers: list[tuple[int, str]] = []
    lock = threading.Lock()

    def book(client: APIClient) -> None:
        try:
            barrier.wait(timeout=30)
            response = client.post("/api/v1/appointments/", body, format="json")
            code = response.json()["errors"][0]["code"] if response.status_code >= 400 else ""
            with lock:
                answers.append((response.status_code, code))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=book, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert sorted(answers) == [(201, "")] + [(409, "slot_taken")] * (THREADS - 1)
    assert Appointment.objects.filter(provider=kind.provider.user).count() == 1
