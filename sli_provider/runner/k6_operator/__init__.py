"""The k6-operator back-end: a run as a TestRun of N runner pods (issue 10).

``manifests`` builds the ConfigMap and the TestRun (pure), ``kube`` is the thin lightkube
adapter, ``verdict`` turns the runner pods into an outcome, ``backend`` ties them together.
"""
