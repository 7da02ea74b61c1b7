"""The service's own metrics, on a registry per app (never prometheus-client's global one)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True)
class ServiceMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        object.__setattr__(
            self,
            "events_received",
            Counter(
                "sli_provider_events_received",
                "Events received, by type and what was done with them",
                ["type", "disposition"],
                registry=r,
            ),
        )
        object.__setattr__(
            self,
            "events_answered",
            Counter(
                "sli_provider_events_answered",
                "Finished replies delivered, by task, status and result",
                ["task", "status", "result"],
                registry=r,
            ),
        )
        object.__setattr__(
            self,
            "replies_undelivered",
            Counter(
                "sli_provider_replies_undelivered",
                "Replies not confirmed, by task, kind (started/finished) and whether they may "
                "have arrived anyway (maybe_sent); none is sent twice",
                ["task", "kind", "maybe_sent"],
                registry=r,
            ),
        )
        object.__setattr__(
            self,
            "query_duration",
            Histogram(
                "sli_provider_query_duration_seconds",
                "Time of one indicator query to Prometheus, retries included, by outcome",
                ["outcome"],
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
                registry=r,
            ),
        )
        object.__setattr__(
            self,
            "retries",
            Counter(
                "sli_provider_retries", "Retried outbound calls, by target", ["target"], registry=r
            ),
        )
        object.__setattr__(
            self,
            "in_flight",
            Gauge("sli_provider_events_in_flight", "Events being handled", ["task"], registry=r),
        )
        object.__setattr__(
            self,
            "events_waiting",
            Gauge(
                "sli_provider_events_waiting",
                "Events taken but not yet started because MAX_EVENTS_IN_FLIGHT are in flight, by "
                "where they wait (memory: core NATS without JOURNAL_PATH; journal: JOURNAL_PATH)",
                ["where"],
                registry=r,
            ),
        )
        object.__setattr__(
            self,
            "events_dropped",
            Counter(
                "sli_provider_events_dropped",
                "Events the NATS client dropped unread because too many were waiting (core NATS "
                "without JOURNAL_PATH, beyond MAX_EVENTS_IN_FLIGHT and the client's buffer)",
                registry=r,
            ),
        )
        # Durable delivery (NATS_DELIVERY=jetstream).
        object.__setattr__(
            self,
            "redeliveries",
            Counter(
                "sli_provider_redeliveries",
                "Events JetStream delivered again (their replica stopped or did not ack)",
                registry=r,
            ),
        )
        object.__setattr__(
            self,
            "duplicates_suppressed",
            Counter(
                "sli_provider_duplicate_replies_suppressed",
                "Replies not published because the shared journal says they were already",
                registry=r,
            ),
        )
        object.__setattr__(
            self,
            "journal_recoveries",
            Counter(
                "sli_provider_journal_recoveries",
                "Events taken over from a replica, or from this process's previous run "
                "(JOURNAL_PATH), that stopped before finishing them",
                registry=r,
            ),
        )
        object.__setattr__(
            self,
            "consumer_pending",
            Gauge(
                "sli_provider_consumer_pending",
                "Messages of a JetStream consumer not yet delivered to any replica",
                ["consumer"],
                registry=r,
            ),
        )

    # Declared for type checkers; set in __post_init__ on the frozen instance.
    events_received: Counter = field(init=False, repr=False)
    events_answered: Counter = field(init=False, repr=False)
    replies_undelivered: Counter = field(init=False, repr=False)
    query_duration: Histogram = field(init=False, repr=False)
    retries: Counter = field(init=False, repr=False)
    in_flight: Gauge = field(init=False, repr=False)
    events_waiting: Gauge = field(init=False, repr=False)
    events_dropped: Counter = field(init=False, repr=False)
    redeliveries: Counter = field(init=False, repr=False)
    duplicates_suppressed: Counter = field(init=False, repr=False)
    journal_recoveries: Counter = field(init=False, repr=False)
    consumer_pending: Gauge = field(init=False, repr=False)
