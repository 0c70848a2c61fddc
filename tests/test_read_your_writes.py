"""An answer is sent after its transaction commits: a read right after a 204 DELETE sees the
deletion (the property suite found the session's commit running after the response)."""

from __future__ import annotations

import httpx

from tests.conftest import event_body, new_key


def test_a_read_right_after_delete_sees_it(client: httpx.Client) -> None:
    seen = []
    for _ in range(30):
        created = client.post(
            "/api/v1/events", json=event_body(), headers={"Idempotency-Key": new_key()}
        ).json()
        assert client.delete(f"/api/v1/events/{created['id']}").status_code == 204
        after = client.get(f"/api/v1/events/{created['id']}")
        seen.append(after.json()["status"] if after.status_code == 200 else after.status_code)
    assert set(seen) <= {"deleted", 404}, seen
