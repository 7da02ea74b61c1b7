"""The Keptn events this service subscribes to: both ingresses (HTTP, NATS) take these only."""

from __future__ import annotations

from sli_provider.keptn.get_sli_task import TASK as GET_SLI
from sli_provider.keptn.test_task import TASK as TEST

GET_SLI_TRIGGERED = f"sh.keptn.event.{GET_SLI}.triggered"
TEST_TRIGGERED = f"sh.keptn.event.{TEST}.triggered"
SUBSCRIBED_TYPES = (GET_SLI_TRIGGERED, TEST_TRIGGERED)
