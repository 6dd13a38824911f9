"""Every Prometheus metric of the product, defined in one place on a per-daemon registry."""

from __future__ import annotations

from abc import abstractmethod
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Generic, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

FAST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
SLOW_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class Metrics:
    """The metric families of the spec; label values are always from bounded sets."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.http_requests = Counter(
            "aiventbus_http_requests_total",
            "HTTP traffic against the daemon",
            ["method", "path", "status"],
            registry=r,
        )
        self.http_request_duration = Histogram(
            "aiventbus_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "path"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.events_published = LoopCounter(
            "aiventbus_events_published_total",
            "Events accepted onto the bus",
            ["topic", "source"],
            registry=r,
        )
        self.events_deduped = Counter(
            "aiventbus_events_deduped_total", "Events dropped by the dedupe window", ["topic"], registry=r
        )
        self.events_chain_limit = Counter(
            "aiventbus_events_chain_limit_total",
            "Chain-reaction guardrail rejections",
            ["reason"],
            registry=r,
        )
        self.event_publish_duration = LoopHistogram(
            "aiventbus_event_publish_duration_seconds",
            "Latency of EventBus.publish",
            ["outcome"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.routing_decisions = Counter(
            "aiventbus_routing_decisions_total",
            "Matched / unmatched routing outcomes",
            ["result"],
            registry=r,
        )
        self.routing_duration = Histogram(
            "aiventbus_routing_duration_seconds",
            "Latency of routing decisions",
            ["result"],
            buckets=FAST_BUCKETS,
            registry=r,
        )
        self.assignments_created = Counter(
            "aiventbus_assignments_created_total",
            "Assignments handed to agents",
            ["agent_id", "lane"],
            registry=r,
        )
        self.assignment_transitions = Counter(
            "aiventbus_assignment_state_transitions_total",
            "claimed / completed / failed / retried / expired",
            ["agent_id", "state"],
            registry=r,
        )
        self.assignment_queue_depth = Gauge(
            "aiventbus_assignment_queue_depth", "Pending assignments per priority lane", ["lane"], registry=r
        )
        self.agent_runs = Counter(
            "aiventbus_agent_runs_total",
            "Assignment processing outcomes",
            ["agent_id", "model", "result"],
            registry=r,
        )
        self.agent_run_duration = Histogram(
            "aiventbus_agent_run_duration_seconds",
            "Latency of one assignment run",
            ["agent_id", "model", "result"],
            buckets=SLOW_BUCKETS,
            registry=r,
        )
        self.llm_requests = Counter(
            "aiventbus_llm_requests_total",
            "LLM completion calls",
            ["agent_id", "model", "result"],
            registry=r,
        )
        self.llm_request_duration = Histogram(
            "aiventbus_llm_request_duration_seconds",
            "LLM wall time",
            ["agent_id", "model"],
            buckets=SLOW_BUCKETS,
            registry=r,
        )
        self.llm_parse_failures = Counter(
            "aiventbus_llm_parse_failures_total",
            "Unparseable structured output",
            ["agent_id", "model"],
            registry=r,
        )
        self.llm_tokens = Counter(
            "aiventbus_llm_tokens_total",
            "Tokens reported by the LLM server",
            ["agent_id", "model", "kind"],
            registry=r,
        )
        self.action_executions = Counter(
            "aiventbus_action_executions_total",
            "Executor outcomes",
            ["agent_id", "action_type", "result"],
            registry=r,
        )
        self.action_execution_duration = Histogram(
            "aiventbus_action_execution_duration_seconds",
            "Executor wall time",
            ["action_type", "result"],
            buckets=SLOW_BUCKETS,
            registry=r,
        )
        self.producer_events_emitted = Counter(
            "aiventbus_producer_events_emitted_total", "Per-producer emit rate", ["producer"], registry=r
        )
        self.system_events = Counter("aiventbus_system_events_total", "Internal system.* events", ["topic"], registry=r)
        self.classifier_fallbacks = Counter(
            "aiventbus_classifier_fallbacks_total",
            "Classifier invocations for unmatched events",
            ["result"],
            registry=r,
        )

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def bounded_topic(topic: str, depth: int = 2) -> str:
    """Topic label: its first `depth` segments, so producers cannot mint unbounded label values."""
    return ".".join(topic.split(".")[:depth])


# The bus updates a counter and a histogram on every publish. prometheus_client takes a lock for each update, which
# is a sixth of a publish's cost on the event loop; these two are only ever updated from the loop thread, so they
# keep plain numbers and hand them to the registry when it is scraped.


class LoopCounterChild:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        self.value += amount


class LoopHistogramChild:
    __slots__ = ("bounds", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0

    def observe(self, amount: float) -> None:
        self.counts[bisect_left(self.bounds, amount)] += 1
        self.sum += amount


Child = TypeVar("Child", LoopCounterChild, LoopHistogramChild)


class _LoopMetric(Collector, Generic[Child]):
    """A labelled metric updated from one thread (the event loop) without a lock; read by the registry."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = list(labelnames)
        self._children: dict[tuple[str, ...], Child] = {}
        registry.register(self)

    def labels(self, *values: str) -> Child:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self._new_child()
        return child

    @abstractmethod
    def _new_child(self) -> Child: ...

    def _samples(self) -> list[tuple[list[str], Child]]:
        return [(list(values), child) for values, child in list(self._children.items())]


class LoopCounter(_LoopMetric[LoopCounterChild]):
    def __init__(self, name: str, documentation: str, labelnames: Sequence[str], registry: CollectorRegistry) -> None:
        super().__init__(name.removesuffix("_total"), documentation, labelnames, registry)

    def _new_child(self) -> LoopCounterChild:
        return LoopCounterChild()

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._samples():
            family.add_metric(values, child.value)
        yield family


class LoopHistogram(_LoopMetric[LoopHistogramChild]):
    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str],
        buckets: Sequence[float],
        registry: CollectorRegistry,
    ) -> None:
        self.bounds = tuple(sorted(buckets))
        super().__init__(name, documentation, labelnames, registry)

    def _new_child(self) -> LoopHistogramChild:
        return LoopHistogramChild(self.bounds)

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for values, child in self._samples():
            counts, cumulative, buckets = list(child.counts), 0, []
            for bound, count in zip([*map(_bound_text, self.bounds), "+Inf"], counts, strict=True):
                cumulative += count
                buckets.append((bound, float(cumulative)))
            family.add_metric(values, buckets, child.sum)
        yield family


def _bound_text(bound: float) -> str:
    return repr(float(bound))
