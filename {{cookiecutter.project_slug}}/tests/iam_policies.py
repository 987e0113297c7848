"""The IAM policies of docs/sagemaker.md, and what each AWS call the project makes asks of them.

moto allows everything, so a test against it cannot see a call the documented policies deny. This
module evaluates calls as IAM does for identity policies (explicit deny wins, else an allow must
match action, resource and condition), against the JSON documents as generated into the docs:

* :func:`documented_policies` reads the execution role's and the caller's policy from the docs;
* :func:`caller_requests` says which IAM actions on which resource ARNs one boto3 call needs;
* :func:`role_requests` says what the execution role needs for a job or model the project created
  (SageMaker acts with the role later, in AWS, where no test can watch it);
* :func:`denied` lists the requests a policy does not allow.

An operation without an entry here fails the test that meets it, so a new call cannot reach users
without its permission being decided in the docs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ACCOUNT = "123456789012"  # moto's account
SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


@dataclass(frozen=True)
class Request:
    """One authorisation IAM makes: ``action`` on ``resource`` with condition ``context``."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict, hash=False, compare=False)
    why: str = field(default="", hash=False, compare=False)

    def __str__(self) -> str:
        return f"{self.action} on {self.resource}" + (f" ({self.why})" if self.why else "")


def documented_policies(markdown: str, values: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``{"trust": ..., "execution-role": ..., "caller": ...}``: the first JSON block after the
    headings "Execution role: trust policy", "Execution role: permissions" and "Caller policy",
    placeholders such as ``<BUCKET>`` replaced."""
    found = {}
    for key, heading in (
        ("trust", "Execution role: trust policy"),
        ("execution-role", "Execution role: permissions"),
        ("caller", "Caller policy"),
    ):
        start = markdown.index(heading)
        block = re.search(r"```json\n(.*?)\n```", markdown[start:], re.S)
        assert block, f"docs/sagemaker.md: no JSON block after {heading!r}"
        text = block.group(1)
        for placeholder, value in values.items():
            text = text.replace(f"<{placeholder}>", value)
        left = re.findall(r"<[A-Z_]+>", text)
        assert not left, f"docs/sagemaker.md {heading}: placeholders without a value: {left}"
        found[key] = json.loads(text)
    return found


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _matches(patterns: Iterable[str], value: str, *, case: bool) -> bool:
    # IAM wildcards: * any run of characters, ? one, everything else literal (fnmatch's [...]
    # classes are not IAM's); ARNs compare case-sensitively, actions not.
    for pattern in patterns:
        expression = "".join(
            ".*" if char == "*" else "." if char == "?" else re.escape(char)
            for char in (pattern if case else pattern.lower())
        )
        if re.fullmatch(expression, value if case else value.lower(), re.S):
            return True
    return False


# The condition operators the docs' policies use. Each needs the key in the request: a missing key
# fails them, which is IAM's rule for these (not for Null, ...IfExists or the negated ones, which
# are refused here rather than evaluated wrongly).
_OPERATORS = ("StringEquals", "StringLike", "ArnLike", "ArnEquals")


def _condition_holds(condition: Mapping[str, Mapping[str, Any]], context: Mapping[str, str]) -> bool:
    keys = {key.lower(): value for key, value in context.items()}  # condition keys ignore case
    for operator, tests in condition.items():
        if operator not in _OPERATORS:
            raise NotImplementedError(f"condition operator {operator}: teach tests/iam_policies.py")
        for key, wanted in tests.items():
            if key.lower() not in keys:
                return False
            options = _listed(wanted)
            actual = keys[key.lower()]
            if operator == "StringEquals" and actual not in options:
                return False
            if operator != "StringEquals" and not _matches(options, actual, case=True):
                return False
    return True


def _statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not _matches(_listed(statement["Action"]), request.action, case=False):
            return False
    elif _matches(_listed(statement["NotAction"]), request.action, case=False):
        return False
    if "Resource" in statement:
        if not _matches(_listed(statement["Resource"]), request.resource, case=True):
            return False
    elif _matches(_listed(statement["NotResource"]), request.resource, case=True):
        return False
    return _condition_holds(statement.get("Condition", {}), request.context)


def allows(policy: Mapping[str, Any], request: Request) -> bool:
    statements = _listed_statements(policy)
    applying = [s for s in statements if _statement_applies(s, request)]
    if any(s["Effect"] == "Deny" for s in applying):
        return False
    return any(s["Effect"] == "Allow" for s in applying)


def _listed_statements(policy: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    statement = policy["Statement"]
    return [statement] if isinstance(statement, dict) else list(statement)


def denied(policy: Mapping[str, Any], requests: Iterable[Request]) -> list[str]:
    """The requests ``policy`` does not allow, each once, in order."""
    seen: dict[str, None] = {}
    for request in requests:
        if not allows(policy, request):
            seen.setdefault(str(request), None)
    return list(seen)


# --- what a call needs -----------------------------------------------------------------------

# SageMaker request members that name a resource, and its ARN's resource type.
_SAGEMAKER_NAMES = {
    "TrainingJobName": "training-job",
    "ModelName": "model",
    "EndpointConfigName": "endpoint-config",
    "EndpointName": "endpoint",
    "TransformJobName": "transform-job",
    "ModelPackageGroupName": "model-package-group",
    "TrackingServerName": "mlflow-tracking-server",
}
# IAM actions that differ from the operation's name.
_S3_ACTIONS = {
    "HeadBucket": ("s3:ListBucket", "bucket"),
    "ListObjects": ("s3:ListBucket", "bucket"),
    "ListObjectsV2": ("s3:ListBucket", "bucket"),
    "GetBucketLocation": ("s3:GetBucketLocation", "bucket"),
    "CreateBucket": ("s3:CreateBucket", "bucket"),
    "HeadObject": ("s3:GetObject", "object"),
    "GetObject": ("s3:GetObject", "object"),
    "PutObject": ("s3:PutObject", "object"),
    "CreateMultipartUpload": ("s3:PutObject", "object"),
    "UploadPart": ("s3:PutObject", "object"),
    "CompleteMultipartUpload": ("s3:PutObject", "object"),
    "AbortMultipartUpload": ("s3:AbortMultipartUpload", "object"),
    "DeleteObject": ("s3:DeleteObject", "object"),
}


def _arn(region: str, kind: str, name: str) -> str:
    # SageMaker writes resource names into ARNs in lower case.
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:{kind}/{name.lower()}"


def _package_arn(region: str, value: str) -> str:
    return value if value.startswith("arn:") else _arn(region, "model-package", value)


def _s3_object(bucket: str, key: str) -> str:
    return f"arn:aws:s3:::{bucket}/{key}"


def _sagemaker(operation: str, params: Mapping[str, Any], region: str) -> list[Request]:
    action = f"sagemaker:{operation}"
    if operation.startswith("List") and operation != "ListTags":
        resources = ["*"]
        if operation == "ListModelPackages" and "ModelPackageGroupName" in params:
            resources = [_arn(region, "model-package-group", params["ModelPackageGroupName"])]
    elif "ResourceArn" in params or "Arn" in params:
        resources = [params.get("ResourceArn") or params["Arn"]]
    elif operation == "CreateModelPackage":
        # The version's ARN is made by the call: any version of the group.
        resources = [_arn(region, "model-package", f"{params['ModelPackageGroupName']}/1")]
    elif "ModelPackageName" in params or "ModelPackageArn" in params:
        resources = [_package_arn(region, params.get("ModelPackageName") or params["ModelPackageArn"])]
    else:
        resources = [
            _arn(region, kind, params[member])
            for member, kind in _SAGEMAKER_NAMES.items()
            if member in params
        ]
        # CreateEndpoint and UpdateEndpoint name the endpoint and its config: both are authorised.
        assert resources, f"no resource known for sagemaker:{operation} {sorted(params)}"
    requests = [Request(action, resource) for resource in resources]
    if operation.startswith("Create") and params.get("Tags"):
        # Tags given on create are authorised as AddTags on the new resource too.
        requests += [
            Request("sagemaker:AddTags", resource, why=f"tags on {operation}") for resource in resources
        ]
    for member in ("RoleArn", "ExecutionRoleArn"):
        if member in params:
            requests.append(
                Request(
                    "iam:PassRole",
                    params[member],
                    {"iam:PassedToService": SAGEMAKER_SERVICE},
                    why=operation,
                )
            )
    return requests


def _s3(operation: str, params: Mapping[str, Any]) -> list[Request]:
    if operation == "DeleteObjects":
        keys = [item["Key"] for item in params["Delete"]["Objects"]]
        return [Request("s3:DeleteObject", _s3_object(params["Bucket"], key)) for key in keys]
    if operation == "CopyObject":
        source = params["CopySource"]
        if isinstance(source, str):
            bucket, _, key = source.lstrip("/").partition("/")
        else:
            bucket, key = source["Bucket"], source["Key"]
        return [
            Request("s3:GetObject", _s3_object(bucket, key)),
            Request("s3:PutObject", _s3_object(params["Bucket"], params["Key"])),
        ]
    action, level = _S3_ACTIONS[operation]
    if level == "bucket":
        return [Request(action, f"arn:aws:s3:::{params['Bucket']}")]
    return [Request(action, _s3_object(params["Bucket"], params["Key"]))]


def _logs(operation: str, params: Mapping[str, Any], region: str) -> list[Request]:
    group = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{params['logGroupName']}"
    if "logStreamName" in params:
        return [Request(f"logs:{operation}", f"{group}:log-stream:{params['logStreamName']}")]
    return [Request(f"logs:{operation}", f"{group}:*")]


def caller_requests(service: str, operation: str, params: Mapping[str, Any], region: str) -> list[Request]:
    """What the caller's identity needs for one boto3 call (``service`` as botocore names it)."""
    if service == "sagemaker":
        return _sagemaker(operation, params, region)
    if service == "sagemaker-runtime":
        return [Request(f"sagemaker:{operation}", _arn(region, "endpoint", params["EndpointName"]))]
    if service == "s3" and operation == "ListBuckets":
        return [Request("s3:ListAllMyBuckets", "*")]
    if service == "s3" and (operation in _S3_ACTIONS or operation in ("DeleteObjects", "CopyObject")):
        return _s3(operation, params)
    if service == "logs":
        return _logs(operation, params, region)
    if service == "sts" and operation == "GetCallerIdentity":
        return [Request("sts:GetCallerIdentity", "*")]
    if service == "iam" and operation in ("GetRole", "SimulatePrincipalPolicy"):
        role = params.get("RoleName") or params["PolicySourceArn"].rsplit("/", 1)[-1]
        return [Request(f"iam:{operation}", f"arn:aws:iam::{ACCOUNT}:role/{role}")]
    if service == "application-autoscaling":
        # Application Auto Scaling acts with the caller's permissions too (its "permissions
        # required" list): on the endpoint, on CloudWatch alarms, and the service-linked role.
        requests = [Request(f"application-autoscaling:{operation}", "*")]
        why = f"application-autoscaling:{operation}"
        if operation == "RegisterScalableTarget":
            endpoint = params["ResourceId"].split("/")[1]
            arn = _arn(region, "endpoint", endpoint)
            requests += [
                Request(f"sagemaker:{action}", arn, why=why)
                for action in ("DescribeEndpoint", "UpdateEndpointWeightsAndCapacities")
            ]
            linked = "sagemaker.application-autoscaling.amazonaws.com"
            requests.append(
                Request(
                    "iam:CreateServiceLinkedRole",
                    f"arn:aws:iam::{ACCOUNT}:role/aws-service-role/{linked}/AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint",
                    {"iam:AWSServiceName": linked},
                    why=f"{why}, first target of the account",
                )
            )
        if operation == "PutScalingPolicy":
            requests += [
                Request(f"cloudwatch:{a}", "*", why=why) for a in ("DescribeAlarms", "PutMetricAlarm")
            ]
        if operation in ("DeleteScalingPolicy", "DeregisterScalableTarget"):
            requests += [Request(f"cloudwatch:{a}", "*", why=why) for a in ("DescribeAlarms", "DeleteAlarms")]
        return requests
    if service == "cloudwatch" and operation in ("PutMetricAlarm", "DescribeAlarms", "DeleteAlarms"):
        return [Request(f"cloudwatch:{operation}", "*")]
    raise AssertionError(
        f"no IAM mapping for {service}:{operation}: decide its permission in docs/sagemaker.md "
        "and add it to tests/iam_policies.py"
    )


# --- what the execution role needs -----------------------------------------------------------


def _s3_reads(uri: str, why: str) -> list[Request]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return [
        Request("s3:ListBucket", f"arn:aws:s3:::{bucket}", why=why),
        Request("s3:GetObject", _s3_object(bucket, f"{key.rstrip('/')}/file"), why=why),
    ]


def _s3_writes(uri: str, why: str) -> list[Request]:
    bucket, _, key = uri[len("s3://") :].partition("/")
    return [Request("s3:PutObject", _s3_object(bucket, f"{key.rstrip('/')}/file"), why=why)]


def _image_pull(image: str, region: str, why: str) -> list[Request]:
    registry, _, repository = image.partition("/")
    account = registry.split(".")[0]
    arn = f"arn:aws:ecr:{region}:{account}:repository/{repository.split(':')[0]}"
    return [Request("ecr:GetAuthorizationToken", "*", why=why)] + [
        Request(f"ecr:{action}", arn, why=why)
        for action in ("BatchGetImage", "GetDownloadUrlForLayer", "BatchCheckLayerAvailability")
    ]


def _log_writes(region: str, group: str, why: str) -> list[Request]:
    arn = f"arn:aws:logs:{region}:{ACCOUNT}:log-group:{group}"
    return [
        Request("logs:CreateLogStream", f"{arn}:*", why=why),
        Request("logs:PutLogEvents", f"{arn}:log-stream:stream", why=why),
    ]


def role_requests(
    operation: str, params: Mapping[str, Any], region: str, artifact_store: str = ""
) -> list[Request]:
    """What SageMaker does with the execution role for a resource created by ``operation``:
    read inputs and the image, write outputs and logs, and (training) talk to MLflow, whose
    artifacts go to ``artifact_store`` (the tracking server's S3 artifact store)."""
    requests: list[Request] = []
    if operation == "CreateTrainingJob":
        why = f"training job {params['TrainingJobName']}"
        for channel in params.get("InputDataConfig", []):
            requests += _s3_reads(
                channel["DataSource"]["S3DataSource"]["S3Uri"], f"{why}, {channel['ChannelName']}"
            )
        output = params["OutputDataConfig"]["S3OutputPath"]
        requests += _s3_writes(f"{output.rstrip('/')}/{params['TrainingJobName']}/output", why)
        checkpoints = (params.get("CheckpointConfig") or {}).get("S3Uri")
        if checkpoints:
            requests += _s3_reads(checkpoints, f"{why}, checkpoints") + _s3_writes(
                checkpoints, f"{why}, checkpoints"
            )
        requests += _image_pull(params["AlgorithmSpecification"]["TrainingImage"], region, why)
        requests += _log_writes(region, "/aws/sagemaker/TrainingJobs", why)
        tracking = (params.get("Environment") or {}).get("MLFLOW_TRACKING_URI", "")
        if tracking.startswith("arn:"):
            requests += [
                Request("sagemaker-mlflow:LogMetric", tracking, why=f"{why}, MLflow"),
                Request("sagemaker-mlflow:CreateRun", tracking, why=f"{why}, MLflow"),
            ]
            assert artifact_store, "a job tracked in SageMaker MLflow needs the server's artifact store"
            requests += _s3_writes(artifact_store, f"{why}, MLflow artifacts")
    elif operation in ("CreateModel", "CreateModelPackage"):
        # A model runs its container's image on its model data; one made from a registered
        # package runs the package's (so a registration is checked as the model it will become).
        if operation == "CreateModel":
            why = f"model {params['ModelName']}"
            containers = [params["PrimaryContainer"]]
        else:
            why = f"model package of {params['ModelPackageGroupName']}"
            containers = params["InferenceSpecification"]["Containers"]
        for container in containers:
            if container.get("Image"):
                requests += _image_pull(container["Image"], region, why)
            if container.get("ModelDataUrl"):
                requests += _s3_reads(container["ModelDataUrl"], why)
        requests += _log_writes(region, "/aws/sagemaker/Endpoints", why)
    elif operation == "CreateTransformJob":
        why = f"transform job {params['TransformJobName']}"
        requests += _s3_reads(params["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"], why)
        requests += _s3_writes(params["TransformOutput"]["S3OutputPath"], why)
        requests += _log_writes(region, "/aws/sagemaker/TransformJobs", why)
    return requests
