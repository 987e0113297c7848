"""A moto server on 127.0.0.1 that the project's unchanged AWS code talks to over real HTTP.

Used by tests/test_aws_*.py; one server per test process, emptied before each test. Two moto
gaps are closed on the server side (in this process, which runs moto), never in project code:

* ``describe_model`` / ``describe_endpoint_config`` / ``describe_endpoint`` answer ``{}`` for
  unset nested structures (VpcConfig, DataCaptureConfig...), which the SageMaker SDK's pydantic
  shapes reject, whereas AWS omits them: empty values are dropped from those responses;
* a training job's ``MetricDefinitions`` are replaced by a fixed example in moto: the requested
  ones are kept, so tests can check what the project asked for.
"""

from __future__ import annotations

import atexit
import copy
import inspect
import json
import socket
import urllib.request
from typing import Any

FAKE_ROLE = "arn:aws:iam::123456789012:role/SageMakerTestRole"
BUCKET = "sm-test-bucket"

_server_url: str | None = None


def _drop_empty(value: Any) -> Any:
    if isinstance(value, dict):
        cleaned = {key: _drop_empty(item) for key, item in value.items()}
        return {key: item for key, item in cleaned.items() if item != {}}
    if isinstance(value, list):
        return [_drop_empty(item) for item in value]
    return value


def _patch_moto() -> None:
    from moto.core.responses import ActionResult
    from moto.sagemaker.models import FakeTrainingJob
    from moto.sagemaker.responses import SageMakerResponse

    for name in ("describe_model", "describe_endpoint_config", "describe_endpoint"):
        original = getattr(SageMakerResponse, name)

        def without_empty(self, _original=original):
            return ActionResult(_drop_empty(_original(self).result))

        setattr(SageMakerResponse, name, without_empty)

    original_init = FakeTrainingJob.__init__
    signature = inspect.signature(original_init)

    def keep_metric_definitions(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        requested = copy.deepcopy(
            (bound.arguments.get("algorithm_specification") or {}).get("MetricDefinitions")
        )
        original_init(self, *args, **kwargs)
        if requested is not None:
            self.algorithm_specification["MetricDefinitions"] = requested

    FakeTrainingJob.__init__ = keep_metric_definitions  # type: ignore[method-assign]
    _add_missing_operations()


# Roles whose name contains this are denied every action by the stand-in for
# iam:SimulatePrincipalPolicy (which moto lacks), so tests can see the SDK's check fail.
NO_PERMISSIONS = "NoPermissions"


def _add_missing_operations() -> None:
    """Operations moto does not implement, answered as AWS would for the cases tests need."""
    from moto.core.responses import ActionResult
    from moto.iam.responses import IamResponse
    from moto.sagemaker.models import sagemaker_backends
    from moto.sagemaker.responses import SageMakerResponse

    def simulate_principal_policy(self):
        # A role created in moto with inline policies is evaluated as IAM would (the documented
        # least-privilege role, tests/iam_policies.py); other role ARNs are allowed everything.
        import iam_policies
        from moto.iam.models import iam_backends

        source = self._get_param("PolicySourceArn")
        actions = self._get_param("ActionNames", [])
        resources = self._get_param("ResourceArns", []) or ["*"]
        try:
            role = iam_backends[self.current_account]["global"].get_role(source.rsplit("/", 1)[-1])
            policies = [json.loads(document) for document in role.policies.values()]
        except Exception:  # not a role moto holds
            policies = []
        results = []
        for action in actions:
            for resource in resources:
                if NO_PERMISSIONS in source:
                    allowed = False
                elif policies:
                    request = iam_policies.Request(action, resource)
                    allowed = any(iam_policies.allows(policy, request) for policy in policies)
                else:
                    allowed = True
                decision = "allowed" if allowed else "implicitDeny"
                results.append(
                    {"EvalActionName": action, "EvalResourceName": resource, "EvalDecision": decision}
                )
        return ActionResult({"EvaluationResults": results, "IsTruncated": False})

    IamResponse.simulate_principal_policy = simulate_principal_policy  # type: ignore[attr-defined]

    def describe_mlflow_tracking_server(self):
        from moto.sagemaker.exceptions import ResourceNotFound

        name = self._get_param("TrackingServerName")
        if name not in MLFLOW_SERVERS:
            raise ResourceNotFound(f"Tracking server {name} does not exist")
        arn = f"arn:aws:sagemaker:{self.region}:{self.current_account}:mlflow-tracking-server/{name}"
        server = {"TrackingServerName": name, "TrackingServerArn": arn, "IsActive": "Active"}
        return ActionResult({**server, **MLFLOW_SERVERS[name]})

    SageMakerResponse.describe_mlflow_tracking_server = describe_mlflow_tracking_server  # type: ignore[attr-defined]

    def stop_training_job(self):
        name = json.loads(self.body)["TrainingJobName"]
        job = sagemaker_backends[self.current_account][self.region].training_jobs[name]
        job.training_job_status = "Stopping"
        job.secondary_status = "Stopping"
        return "{}"

    SageMakerResponse.stop_training_job = stop_training_job  # type: ignore[attr-defined]

    def stop_transform_job(self):
        name = json.loads(self.body)["TransformJobName"]
        job = sagemaker_backends[self.current_account][self.region].transform_jobs[name]
        job.transform_job_status = "Stopping"
        return "{}"

    SageMakerResponse.stop_transform_job = stop_transform_job  # type: ignore[attr-defined]

    # moto drops a training job's Environment; AWS keeps and describes it.
    create, describe = SageMakerResponse.create_training_job, SageMakerResponse.describe_training_job

    def create_training_job(self):
        result = create(self)
        environment = self._get_param("Environment")
        if environment:
            job = self.sagemaker_backend.training_jobs[self._get_param("TrainingJobName")]
            job.environment = environment
        return result

    def describe_training_job(self):
        from moto.core.exceptions import JsonRESTError

        if self._get_param("TrainingJobName") in DENIED_JOBS:
            raise JsonRESTError(
                "AccessDeniedException", "not authorized to perform sagemaker:DescribeTrainingJob"
            )
        result = describe(self)
        job = self.sagemaker_backend.training_jobs[self._get_param("TrainingJobName")]
        if getattr(job, "environment", None):
            result.result["Environment"] = job.environment  # type: ignore[index]
        return result

    SageMakerResponse.create_training_job = create_training_job  # type: ignore[method-assign]
    SageMakerResponse.describe_training_job = describe_training_job  # type: ignore[method-assign]

    def update_endpoint(self):
        # As AWS does once the new fleet is up: the endpoint serves the new config.
        UPDATE_REQUESTS.append(json.loads(self.body))  # moto ignores DeploymentConfig
        endpoint = self.sagemaker_backend.endpoints[self._get_param("EndpointName")]
        if FAIL_UPDATES:
            from moto.sagemaker.exceptions import ValidationError

            raise ValidationError(message="Cannot update in-progress endpoint (test double)")
        if HOLD_UPDATES:
            # An update still in progress: the endpoint runs the old config and is moving to the
            # new one (PendingDeploymentSummary); the caller's next describe is denied, as when
            # its credentials expire during a long bake.
            endpoint.endpoint_status = "Updating"
            endpoint.pending_config = self._get_param("EndpointConfigName")
            DENY_NEXT_DESCRIBE.append(endpoint.endpoint_name)
            return ActionResult({"EndpointArn": endpoint.arn})
        if ROLL_BACK_UPDATES:
            # As AWS does when the new fleet fails: InService again, on the old config.
            endpoint.failure_reason = (
                "The primary container for production variant AllTraffic did not pass the ping health check."
            )
            return ActionResult({"EndpointArn": endpoint.arn})
        config = self.sagemaker_backend.describe_endpoint_config(self._get_param("EndpointConfigName"))
        endpoint.endpoint_config_name = config["EndpointConfigName"]
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        return ActionResult({"EndpointArn": endpoint.arn})

    SageMakerResponse.update_endpoint = update_endpoint  # type: ignore[attr-defined]

    describe_endpoint = SageMakerResponse.describe_endpoint

    def describe_endpoint_with_pending(self):
        from moto.core.exceptions import JsonRESTError

        name = self._get_param("EndpointName")
        if name in DENY_NEXT_DESCRIBE:
            DENY_NEXT_DESCRIBE.remove(name)
            raise JsonRESTError(
                "AccessDeniedException", "The security token included in the request is expired"
            )
        result = describe_endpoint(self)
        endpoint = self.sagemaker_backend.endpoints.get(name)
        pending = getattr(endpoint, "pending_config", None)
        if pending:
            result.result["PendingDeploymentSummary"] = {"EndpointConfigName": pending}  # type: ignore[index]
        return result

    SageMakerResponse.describe_endpoint = describe_endpoint_with_pending  # type: ignore[method-assign]

    # Every SageMaker action in the order it reached the server (tests assert sequences).
    call_action = SageMakerResponse.call_action

    def recorded(self):
        CALLS.append(self._get_action())
        return call_action(self)

    SageMakerResponse.call_action = recorded  # type: ignore[method-assign]

    from moto.sagemakerruntime.responses import SageMakerRuntimeResponse

    invoke = SageMakerRuntimeResponse.invoke_endpoint

    def invoke_recorded(self):
        INVOKED.append(json.loads(self.body))
        return invoke(self)

    SageMakerRuntimeResponse.invoke_endpoint = invoke_recorded  # type: ignore[method-assign]

    describe_transform = SageMakerResponse.describe_transform_job

    def describe_transform_job(self):
        result = describe_transform(self)
        if FAIL_TRANSFORM_JOBS:
            result.result.update(  # type: ignore[attr-defined]
                TransformJobStatus="Failed", FailureReason="ClientError: model container failed"
            )
        return result

    SageMakerResponse.describe_transform_job = describe_transform_job  # type: ignore[method-assign]

    from moto.applicationautoscaling.exceptions import AWSValidationException
    from moto.applicationautoscaling.responses import ApplicationAutoScalingResponse

    put_scaling_policy = ApplicationAutoScalingResponse.put_scaling_policy

    def failing_put_scaling_policy(self):
        if FAIL_SCALING_POLICIES:
            # As AWS answers a caller without the service-linked role's permissions.
            raise AWSValidationException(
                "Failed to set up scaling policy: not authorized to create the service-linked role"
            )
        return put_scaling_policy(self)

    ApplicationAutoScalingResponse.put_scaling_policy = failing_put_scaling_policy  # type: ignore[method-assign]


CALLS: list[str] = []
# Job names whose DescribeTrainingJob is answered AccessDeniedException (as for a caller without it).
DENIED_JOBS: set[str] = set()
# SageMaker managed MLflow tracking servers by name: {"MlflowVersion": ..., "ArtifactStoreUri": ...}.
MLFLOW_SERVERS: dict[str, dict[str, str]] = {}
# Bodies of InvokeEndpoint requests, in order.
INVOKED: list[dict] = []
# While non-empty, every transform job describes itself as Failed.
FAIL_TRANSFORM_JOBS: list[bool] = []
# While non-empty, every endpoint update is rolled back (the endpoint keeps its old config).
ROLL_BACK_UPDATES: list[bool] = []
# Bodies of UpdateEndpoint requests, in order (DeploymentConfig included).
UPDATE_REQUESTS: list[dict] = []
# While non-empty, every UpdateEndpoint request is refused (the endpoint stays as it is).
FAIL_UPDATES: list[bool] = []
# While non-empty, an update stays in progress (Updating, with a PendingDeploymentSummary).
HOLD_UPDATES: list[bool] = []
# Endpoints whose next DescribeEndpoint is denied (once).
DENY_NEXT_DESCRIBE: list[str] = []
# While non-empty, every PutScalingPolicy fails (a target registers, its policy does not).
FAIL_SCALING_POLICIES: list[bool] = []


def set_training_job_status(name: str, region: str, status: str) -> None:
    """moto completes jobs at once; a test that needs a running job sets it here (server side)."""
    from moto.sagemaker.models import sagemaker_backends

    for backend in sagemaker_backends.values():
        jobs = backend[region].training_jobs
        if name in jobs:
            jobs[name].training_job_status = status
            jobs[name].secondary_status = status
            return
    raise KeyError(name)


def set_transform_job_status(name: str, region: str, status: str) -> None:
    """moto completes transform jobs at once; a test that needs a running one sets it here."""
    from moto.sagemaker.models import sagemaker_backends

    for backend in sagemaker_backends.values():
        jobs = backend[region].transform_jobs
        if name in jobs:
            jobs[name].transform_job_status = status
            return
    raise KeyError(name)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_url() -> str:
    """Start moto once per test process (loopback only) and return its URL."""
    global _server_url
    if _server_url is None:
        from moto.server import ThreadedMotoServer

        _patch_moto()
        port = _free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        atexit.register(server.stop)
        _server_url = f"http://127.0.0.1:{port}"
    return _server_url


def activate(monkeypatch: Any, tmp_path: Any) -> str:
    """Point every AWS client of this process (and its children) at a freshly reset moto."""
    url = server_url()
    _post(f"{url}/moto-api/reset", None)
    CALLS.clear()
    INVOKED.clear()
    FAIL_TRANSFORM_JOBS.clear()
    MLFLOW_SERVERS.clear()
    DENIED_JOBS.clear()
    ROLL_BACK_UPDATES.clear()
    UPDATE_REQUESTS.clear()
    HOLD_UPDATES.clear()
    DENY_NEXT_DESCRIBE.clear()
    FAIL_SCALING_POLICIES.clear()
    FAIL_UPDATES.clear()
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "SAGEMAKER_ROLE",
        "SAGEMAKER_BUCKET",
        "AWS_ENDPOINT_URL_S3",
        "SAGEMAKER_USER_CONFIG_OVERRIDE",
        "SAGEMAKER_ADMIN_CONFIG_OVERRIDE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", url)
    # A region the project must not use: config.toml's [sagemaker] region comes first.
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-west-2")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    # No real profile or SDK defaults file may leak in from the machine running the tests.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    # moto has no iam:SimulatePrincipalPolicy, which the SDK calls to validate roles.
    monkeypatch.setenv("SAGEMAKER_VALIDATE_ROLE", "false")
    return url


def client(service: str, region: str) -> Any:
    import boto3

    return boto3.client(service, region_name=region)


def _post(url: str, payload: Any) -> None:
    data = None if payload is None else json.dumps(payload).encode()
    request = urllib.request.Request(
        url, data=data, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10):
        pass


def queue_endpoint_results(url: str, region: str, bodies: list[Any]) -> None:
    """What the next InvokeEndpoint calls in ``region`` return (moto cannot run a model)."""
    _post(
        f"{url}/moto-api/static/sagemaker/endpoint-results",
        {
            "region": region,
            "results": [{"Body": json.dumps(body), "ContentType": "application/json"} for body in bodies],
        },
    )


def sagemaker_leftovers(region: str) -> dict[str, list[str]]:
    """Endpoints, endpoint configs and models that exist in moto."""
    sm = client("sagemaker", region)
    return {
        "endpoints": [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]],
        "endpoint_configs": [c["EndpointConfigName"] for c in sm.list_endpoint_configs()["EndpointConfigs"]],
        "models": [m["ModelName"] for m in sm.list_models()["Models"]],
    }
