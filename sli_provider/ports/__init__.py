"""What the pure core needs from outside, as Protocols and error classes; adapters implement them.

``querier``: instant queries against a Prometheus-compatible store; ``resources``: reading a
resource (sli.yaml, k6 configuration) at the levels Keptn keeps them. ``metrics_store`` and
``store_info`` are the words those answers use about the store itself.
"""
