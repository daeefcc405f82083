"""What syncd writes and reads does not depend on icalendar's process-wide timezone
provider, which another library loaded in the same process may switch: khal's import
calls ``icalendar.use_pytz()``.  Found when the khal interop test ran before the worker
tests, and the main process's files no longer equalled the workers'."""

from __future__ import annotations

from collections.abc import Iterator

import icalendar
import pytest

from syncd.convert import ical_out, ics_to_jscal, jscal_to_ics
from tests.convert.test_command import EVENT as FILE

EVENT = {
    "@type": "Event",
    "uid": "provider@example.com",
    "title": "Across both changes of the clocks",
    "start": "2026-03-01T09:00:00",
    "timeZone": "Europe/London",
    "duration": "PT1H",
    "recurrenceRules": [{"@type": "RecurrenceRule", "frequency": "monthly", "count": 12}],
}


@pytest.fixture
def pytz_provider() -> Iterator[None]:
    pytest.importorskip("pytz")
    icalendar.use_pytz()
    ical_out._generated_zone.cache_clear()
    try:
        yield
    finally:
        icalendar.use_zoneinfo()
        ical_out._generated_zone.cache_clear()


def _both_ways() -> tuple[bytes, list[dict]]:
    return jscal_to_ics([EVENT]), ics_to_jscal(FILE)  # a file with a TZID and a rule


def test_the_same_files_and_objects_whichever_provider_icalendar_was_switched_to(
    pytz_provider,
):
    under_pytz = _both_ways()
    icalendar.use_zoneinfo()
    ical_out._generated_zone.cache_clear()
    under_zoneinfo = _both_ways()
    assert b"BEGIN:VTIMEZONE" in under_zoneinfo[0]
    assert under_pytz == under_zoneinfo
