"""The k6-operator back-end: a run as a TestRun of N runner pods.

``manifests`` builds the ConfigMap and the TestRun (pure), ``kube`` is the thin lightkube
adapter, ``runner_logs`` reads a runner's own summary from its log, ``verdict`` turns the runner
pods into an outcome (pure), ``backend`` ties them together.
"""
