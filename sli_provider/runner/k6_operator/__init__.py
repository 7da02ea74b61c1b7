"""The k6-operator back-end: a run as a TestRun of N runner pods, judged as one test.

``manifests`` builds the ConfigMap and the TestRun (pure), ``kube`` is the thin lightkube
adapter (the API server, and k6's REST API behind each runner's Service), ``archive`` runs this
service's own k6 on the script (``k6 archive``, ``k6 inspect`` for its thresholds),
``runner_logs`` reads a runner's summary from its log, ``verdict`` turns the runner pods into an
outcome (pure), ``whole_test`` judges thresholds on the runners' merged metrics in the store,
``live`` judges abortOnFail thresholds while the run goes, ``backend`` ties them together.
"""
