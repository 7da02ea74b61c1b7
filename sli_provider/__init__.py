"""Keptn SLI provider and test runner for k6 load tests whose metrics live in Prometheus."""

__version__ = "0.1.0"
