"""Real-time endpoints, batch transform, and listing / deleting what this project created.

One call per resource (model, endpoint config, endpoint), so a failure part-way can remove exactly
what was already made. Names start with the endpoint (or project) name, which is how ``delete``
finds leftovers; ``list`` and ``delete --all`` find resources by the project tag.
"""

from __future__ import annotations

import json
import logging
import re
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import ProjectConfig
from ..data.io import read_table, write_jsonl
from ..errors import DataFormatError, UsageError
from .autoscaling import (
    Autoscaling,
    ScalingSettings,
    aws_message,
    disable_autoscaling,
    enable_autoscaling,
    read_autoscaling,
    restore_autoscaling,
    scaling_resource,
)
from .images import (
    Versions,
    check_instance_type,
    container_environment,
    image_for_instance,
    image_uri,
    inference_versions,
    versions_from_image,
)
from .jobs import describe_job
from .names import VARIANT, ProjectNames, timestamp
from .registry import ModelSource, Removed, check_package_ref, resolve_model_package
from .rollout import Rollout
from .session import PROJECT_TAG, Aws, is_not_found, paged, project_tags, split_s3_uri

log = logging.getLogger(__name__)

PACKAGE = __package__.rsplit(".", 1)[0]
HANDLER = "code/inference.py"
JSON = "application/json"
JSONLINES = "application/jsonlines"
# Representative CPU type: serverless endpoints run CPU images only.
SERVERLESS_IMAGE_INSTANCE = "ml.m5.xlarge"


def default_endpoint_name(config: ProjectConfig) -> str:
    # "-endpoint" keeps the models that delete sweeps apart from batch-job models.
    return config.sagemaker.endpoint_name or ProjectNames.of(config.project.slug).default_endpoint


def check_model_archive(path: Path) -> None:
    """The serving package's layout check, as a usage error that says how to fix it."""
    from ..serving.package import PackageError
    from ..serving.package import check_model_archive as check

    try:
        check(path)
    except PackageError as error:
        raise UsageError(
            f"{error}; build the archive with `{PACKAGE} package` (model files at the root plus {HANDLER})"
        ) from None


def resolve_model_source(
    config: ProjectConfig,
    *,
    job: str | None = None,
    model_data: str | None = None,
    model_package: str | None = None,
) -> tuple[str, str]:
    """Offline check of what to deploy; returns (kind, value) with kind 'job', 'package',
    'local' or 's3'."""
    if sum(map(bool, (job, model_data, model_package))) != 1:
        raise UsageError("give exactly one of --job NAME, --model-data PATH_OR_S3_URI or --model-package ARN")
    if job:
        return "job", job
    if model_package:
        return "package", check_package_ref(model_package)
    assert model_data is not None
    if model_data.startswith("s3://"):
        split_s3_uri(model_data)
        if not model_data.endswith(".tar.gz"):
            raise UsageError(f"--model-data {model_data}: expected an s3:// URI of a .tar.gz")
        return "s3", model_data
    path = Path(model_data)
    if not path.is_file():
        raise UsageError(f"--model-data {path}: no such file (build it with `package`)")
    check_model_archive(path)
    return "local", str(path.resolve())


def materialise_model_source(config: ProjectConfig, aws: Aws, kind: str, value: str) -> ModelSource:
    """Turn a checked source into an S3 model.tar.gz (uploading a local archive)."""
    section = config.sagemaker
    configured = Versions(section.transformers_version, section.pytorch_version, section.py_version)
    if kind == "job":
        job = describe_job(aws, value)
        if job.status != "Completed":
            raise UsageError(f"training job {value} is {job.status}, not Completed")
        versions = versions_from_image(job.image) or configured
        return _with_handler(config, aws, ModelSource(job.model_data, versions, f"job {value}", value))
    if kind == "package":
        return resolve_model_package(config, aws, value).model_source(configured)
    if kind == "s3":
        return _with_handler(config, aws, ModelSource(value, configured, value))
    return ModelSource(_upload_model(config, aws, Path(value)), configured, value)


def _upload_model(config: ProjectConfig, aws: Aws, archive: Path) -> str:
    return aws.upload(archive, ProjectNames.of(config.project.slug).models(aws.bucket, timestamp()))


def _with_handler(config: ProjectConfig, aws: Aws, source: ModelSource) -> ModelSource:
    """An S3 archive must serve requests: a training job's model.tar.gz (a plain model folder)
    is repackaged with code/inference.py; any other archive is checked."""
    from ..serving.package import build_model_archive

    with tempfile.TemporaryDirectory(prefix="sm-model-") as tmp:
        local = Path(tmp) / "model.tar.gz"
        aws.client("s3").download_file(*split_s3_uri(source.model_data), str(local))
        if not source.origin.startswith("job "):
            check_model_archive(local)
            return source
        with tarfile.open(local, "r:gz") as archive:
            if HANDLER in archive.getnames():
                check_model_archive(local)
                return source
            model_dir = Path(tmp) / "model"
            archive.extractall(model_dir, filter="data")
        packaged = Path(tmp) / "packaged" / "model.tar.gz"
        build_model_archive(model_dir, packaged)
        uri = _upload_model(config, aws, packaged)
        log.info("repackaged %s with %s as %s", source.model_data, HANDLER, uri)
        return ModelSource(uri, source.versions, source.origin, source.run_id)


@dataclass
class Deployment:
    endpoint_name: str
    endpoint_config_name: str
    model_name: str
    image: str
    model_data: str
    status: str = ""
    autoscaling: str = ""
    rollout: str = ""  # how --update shifted traffic


def create_model(
    aws: Aws,
    name: str,
    image: str,
    source: ModelSource,
    tags: list[dict[str, str]],
    environment: dict[str, str] | None = None,
) -> Callable[[], Any]:
    """A SageMaker Model for ``source``; returns how to delete it. ``environment`` is added to
    the container's own (e.g. batch limits).

    A registered version runs as its package (PrimaryContainer ModelPackageName), so the model's
    lineage leads back to the approved version and its image and model data cannot drift from it.
    Where ``image`` is given and not the package's (the CPU build of its GPU image, for a CPU
    target), the package's model data runs in ``image`` and a ``model-package`` tag names the
    version.
    """
    container: dict[str, Any]
    if source.package_arn and image in ("", source.image):
        container = {"ModelPackageName": source.package_arn}
        if environment:
            container["Environment"] = environment
    else:
        container = {
            "Image": image,
            "ModelDataUrl": source.model_data,
            "Environment": {**container_environment(aws.settings.region), **(environment or {})},
        }
        if source.package_arn:
            tags = [*tags, {"Key": "model-package", "Value": source.package_arn}]
    client = aws.client("sagemaker")
    client.create_model(
        ModelName=name, PrimaryContainer=container, ExecutionRoleArn=aws.settings.role, Tags=tags
    )
    return lambda: client.delete_model(ModelName=name)


def inference_image(config: ProjectConfig, aws: Aws, source: ModelSource, instance_type: str) -> str:
    """The image to serve ``source`` on ``instance_type``: a registered version's own image, built
    for the instance's processor; else the configured inference image."""
    if source.image:
        return image_for_instance(source.image, aws.settings.region, instance_type)
    return image_uri(inference_versions(config), "inference", aws.settings.region, instance_type)


def plan_deploy(config: ProjectConfig, *, instance_type: str | None, serverless_memory_mb: int | None) -> str:
    """Offline checks for deploy; returns the instance type."""
    instance_type = instance_type or config.sagemaker.inference_instance_type
    if serverless_memory_mb is not None:
        if serverless_memory_mb not in range(1024, 6145, 1024):
            raise UsageError("--serverless-memory must be 1024, 2048, ..., 6144 (MB)")
    else:
        check_instance_type(instance_type, "endpoint")
    return instance_type


# Variant properties that deploy does not set, kept across --update: those that hold whatever
# the instance type, and those chosen for one instance type (kept while it stays the same).
KEPT_VARIANT_PROPERTIES = (
    "ModelDataDownloadTimeoutInSeconds",
    "ContainerStartupHealthCheckTimeoutInSeconds",
    "VariantInstanceProvisionTimeoutInSeconds",
    "RoutingConfig",
    "EnableSSMAccess",
    "CoreDumpConfig",
)
KEPT_FOR_SAME_INSTANCE_TYPE = (
    "VolumeSizeInGB",
    "InferenceAmiVersion",
    "ManagedInstanceScaling",
    "CapacityReservationConfig",
    "AcceleratorPartitionLayouts",
)


@dataclass(frozen=True)
class Serving:
    """What an endpoint runs before --update: its config, that config's production variant and
    the variant's current instance count (0 for a serverless variant)."""

    config_name: str
    variant: dict[str, Any]
    instance_count: int

    @property
    def serverless(self) -> bool:
        return "ServerlessConfig" in self.variant

    def kept_properties(self, instance_type: str) -> dict[str, Any]:
        """The old variant's properties the new instance variant inherits."""
        if self.serverless:
            return {}
        names: tuple[str, ...] = KEPT_VARIANT_PROPERTIES
        if self.variant.get("InstanceType") == instance_type:
            names += KEPT_FOR_SAME_INSTANCE_TYPE
        return {name: self.variant[name] for name in names if name in self.variant}


def read_serving(client: Any, endpoint_name: str) -> Serving:
    described = client.describe_endpoint(EndpointName=endpoint_name)
    config_name = described["EndpointConfigName"]
    variants = client.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    variant = next((v for v in variants if v["VariantName"] == VARIANT), variants[0])
    summary: dict[str, Any] = next(
        (v for v in described.get("ProductionVariants", []) if v["VariantName"] == variant["VariantName"]),
        {},
    )
    count = summary.get("CurrentInstanceCount", summary.get("DesiredInstanceCount"))
    if count is None:
        count = variant.get("InitialInstanceCount", 0)
    return Serving(config_name, dict(variant), int(count))


def deploy(
    config: ProjectConfig,
    aws: Aws,
    source: ModelSource,
    *,
    endpoint_name: str,
    instance_type: str,
    instance_count: int | None = None,
    serverless_memory_mb: int | None = None,
    serverless_max_concurrency: int = 5,
    autoscaling: Autoscaling | None = None,
    wait: bool = True,
    update: bool = False,
    rollout: Rollout | None = None,
) -> Deployment:
    """Model -> endpoint config -> endpoint (-> autoscaling); removes what it made if a later
    step fails, but never a config or model that an endpoint runs. The caller has run
    check_autoscaling, check_update and check_rollout_alarms (before any upload).

    ``update`` swaps an existing endpoint to the new model without downtime: SageMaker keeps
    serving the old fleet until the new one is InService (UpdateEndpoint, shifting traffic as
    ``rollout`` says); only then are the old endpoint config and model removed. The new variant
    keeps the old one's instance count (unless ``instance_count`` is given) and the properties
    deploy does not set, and the old scaling settings come back unless ``autoscaling`` replaces
    them. If the update fails or SageMaker rolls it back, the new model and config are removed and
    the old scaling settings restored.

    Once the endpoint serves the new config it stays: if autoscaling cannot be registered then,
    UsageError says that it serves without, and how to add it.
    """
    from sagemaker.core.resources import Endpoint

    lookup_type = SERVERLESS_IMAGE_INSTANCE if serverless_memory_mb else instance_type
    image = inference_image(config, aws, source, lookup_type)
    name = ProjectNames.of(config.project.slug).model(endpoint_name, timestamp())
    client = aws.client("sagemaker")
    tags = project_tags(config, source.run_id)
    serving = read_serving(client, endpoint_name) if update else None
    # Read before the target is deregistered, to put it back after the switch or a rollback.
    old_scaling = read_autoscaling(aws, endpoint_name) if update else None
    variant: dict[str, Any] = {"VariantName": VARIANT, "ModelName": name}
    if serverless_memory_mb:
        variant["ServerlessConfig"] = {
            "MemorySizeInMB": serverless_memory_mb,
            "MaxConcurrency": serverless_max_concurrency,
        }
    else:
        count = instance_count or (serving.instance_count if serving else 0) or 1
        bounds = autoscaling or old_scaling
        if instance_count is None and bounds is not None:
            count = min(max(count, bounds.minimum), bounds.maximum)
        if serving is not None:
            variant.update(serving.kept_properties(instance_type))
        variant.update(InstanceType=instance_type, InitialInstanceCount=count, InitialVariantWeight=1.0)
    # Blue/green options do not apply to serverless endpoints (check_update refused them).
    if serving is None or serving.serverless or serverless_memory_mb:
        rollout = None
    elif rollout is None:
        rollout = Rollout()
    # Application Auto Scaling refuses an update that changes the instance type of a variant it
    # scales; any other update keeps the target, and the fleet scales on throughout the update.
    must_deregister = (
        old_scaling is not None
        and serving is not None
        and (
            serving.serverless
            or bool(serverless_memory_mb)
            or serving.variant.get("InstanceType") != instance_type
        )
    )
    created: list[Callable[[], Any]] = []  # how to remove each resource made so far
    deregistered = switching = False
    try:
        create_model(aws, name, image, source, tags)
        # A guarded removal: should the endpoint run the new config after all (interrupted
        # after the switch), neither it nor its model is deleted.
        created.append(lambda: _remove_unused(client, configs=[name], models=[name]))
        # boto3 here: sagemaker-core 2.27 sends ServerlessConfig.MemorySizeInMb (wrong case),
        # which the API rejects.
        client.create_endpoint_config(EndpointConfigName=name, ProductionVariants=[variant], Tags=tags)
        if update:
            if must_deregister:
                assert old_scaling is not None
                log.warning(
                    "endpoint %s: its autoscaling is removed for the change of instance type and put "
                    "back once the update ends; should this process be stopped first, put it back with: %s",
                    endpoint_name,
                    old_scaling.commands(endpoint_name),
                )
                deregistered = bool(disable_autoscaling(aws, endpoint_name))
            request: dict[str, Any] = {"EndpointName": endpoint_name, "EndpointConfigName": name}
            if rollout is not None and rollout.options:
                # Only what was asked for: without options SageMaker's own default applies.
                request["DeploymentConfig"] = rollout.request()
            client.update_endpoint(**request)
            switching = True
            endpoint = Endpoint.get(endpoint_name=endpoint_name, session=aws.boto, region=aws.settings.region)
        else:
            endpoint = Endpoint.create(
                endpoint_name=endpoint_name,
                endpoint_config_name=name,
                tags=[_tag_shape(t) for t in tags],
                session=aws.boto,
                region=aws.settings.region,
            )
            created.append(endpoint.delete)
        log.info(
            "endpoint %s is being %s (model %s, image %s)",
            endpoint_name,
            "updated" if update else "created",
            name,
            image,
        )
        if wait:
            endpoint.wait_for_status("InService")
        endpoint.refresh()
        if update and wait and endpoint.endpoint_config_name != name:
            # SageMaker rolled the update back: InService, but on the old config. Say so, and
            # remove the new config and model (nothing serves them).
            reason = getattr(endpoint, "failure_reason", None) or "no reason given"
            restored = restore_autoscaling(aws, endpoint_name, old_scaling) if deregistered else ""
            restored = f"; {restored}" if restored else ""
            deregistered = False
            raise UsageError(
                f"the update of endpoint {endpoint_name} was rolled back: it still runs endpoint "
                f"config {endpoint.endpoint_config_name}, not {name} ({reason}); the new model and "
                f"config are removed{restored}. `sagemaker logs` does not cover endpoints: see "
                f"CloudWatch log group /aws/sagemaker/Endpoints/{endpoint_name}"
            )
    except BaseException as error:
        if switching and not isinstance(error, UsageError):
            # Interrupted while SageMaker updates: the update goes on without us. The guarded
            # removal below keeps the new config and model while the endpoint may switch to them.
            log.warning(
                "endpoint %s is still being updated to endpoint config %s in SageMaker; follow it with "
                "`aws sagemaker describe-endpoint --endpoint-name %s`",
                endpoint_name,
                name,
                endpoint_name,
            )
        if deregistered and old_scaling is not None:
            outcome = restore_autoscaling(aws, endpoint_name, old_scaling)
            log.warning("endpoint %s: %s", endpoint_name, outcome)
        for remove in reversed(created):
            try:
                remove()
            except Exception as error:  # report, but keep the original failure
                log.warning("could not clean up after a failed deploy: %s", error)
        raise
    result = Deployment(
        endpoint_name,
        name,
        name,
        image,
        source.model_data,
        str(endpoint.endpoint_status),
        rollout=rollout.describe() if rollout else "",
    )
    scaling = ScalingSettings.of(endpoint_name, autoscaling) if autoscaling else old_scaling
    if scaling is not None and serverless_memory_mb:
        log.warning("endpoint %s is serverless now: its instance autoscaling is dropped", endpoint_name)
        scaling = None
    failure: Exception | None = None
    if scaling is not None and (deregistered or autoscaling or not update):
        try:
            result.autoscaling = f"{enable_autoscaling(aws, endpoint_name, scaling)} ({scaling.describe()})"
        except Exception as error:
            failure = error
    elif scaling is not None:
        result.autoscaling = f"{scaling_resource(endpoint_name)} ({scaling.describe()}, kept)"
    if serving is not None:
        # The endpoint serves the new config: the old one and its model are unused now. Failing
        # to remove them loses nothing; say so and go on.
        try:
            _remove_unused(client, configs=[serving.config_name])
        except Exception as error:
            log.warning(
                "endpoint %s: the old endpoint config %s could not be removed (%s); `sagemaker delete "
                "--all` removes it later",
                endpoint_name,
                serving.config_name,
                aws_message(error),
            )
    if failure is not None:
        assert scaling is not None
        # The endpoint works and bills: keep it, and say exactly what it lacks.
        raise UsageError(
            f"endpoint {endpoint_name} is InService on endpoint config {name} WITHOUT autoscaling: "
            f"registering {scaling.describe()} failed ({aws_message(failure)}); add it with "
            f"{scaling.commands(endpoint_name)}, or remove the endpoint with `sagemaker delete "
            f"--endpoint-name {endpoint_name}`"
        ) from failure
    return result


def _tag_shape(tag: dict[str, str]) -> dict[str, str]:
    """A boto3-style tag as sagemaker-core resources take it (validated into their Tag)."""
    return {"key": tag["Key"], "value": tag["Value"]}


def check_update(
    aws: Aws, endpoint_name: str, *, update: bool, wait: bool, rollout: Rollout | None = None
) -> None:
    """Before uploading anything: a new deployment needs a free name, an update an endpoint
    that is InService (and waiting, since the old model goes only once the new one serves),
    and traffic options an endpoint that is not serverless."""
    described = _describe_endpoint(aws.client("sagemaker"), endpoint_name)
    if not update:
        if described:
            raise UsageError(
                f"endpoint {endpoint_name} already exists; swap its model without downtime with "
                f"--update, delete it first (`sagemaker delete --endpoint-name {endpoint_name}`), "
                "or choose --endpoint-name"
            )
        return
    if not described:
        raise UsageError(f"endpoint {endpoint_name} does not exist; deploy it without --update")
    if not wait:
        raise UsageError(
            "--update waits until the new model serves (the old one is removed then); drop --no-wait"
        )
    status = described["EndpointStatus"]
    if status != "InService":
        raise UsageError(f"endpoint {endpoint_name} is {status}; it can be updated once it is InService")
    serverless = any("CurrentServerlessConfig" in v for v in described.get("ProductionVariants", []))
    if rollout is not None and rollout.options and serverless:
        raise UsageError(
            f"endpoint {endpoint_name} is serverless: serverless endpoints do not support blue/green "
            f"traffic shifting or rollback alarms; drop {', '.join(rollout.options)}"
        )


def _describe_endpoint(client: Any, endpoint_name: str) -> dict[str, Any] | None:
    """DescribeEndpoint, or None when there is no such endpoint."""
    try:
        return dict(client.describe_endpoint(EndpointName=endpoint_name))
    except client.exceptions.ClientError as error:
        if is_not_found(error):
            return None
        raise


# What one input of a request is: a text, or a text pair {"text": ..., "text_pair": ...}.
Item = str | dict[str, str]


def read_texts(
    texts: Sequence[str], file: str | None, config: ProjectConfig, text_pair: str | None = None
) -> list[Item]:
    """Texts from the command line, or from a file: .txt (one per line) or a data table (see
    :func:`texts_from_table`). With ``text_pair``, the one text given and it as a pair. Whether
    the endpoint's model reads texts or pairs is its to say: it refuses the other kind with a
    reason."""
    if text_pair is not None:
        if len(texts) != 1 or file:
            raise UsageError("--text-pair goes with exactly one text argument (and no --file)")
        return [{"text": texts[0], "text_pair": text_pair}]
    found: list[Item] = list(texts)
    if file:
        path = Path(file)
        if not path.is_file():
            raise UsageError(f"{path}: no such file")
        if path.suffix.lower() == ".txt":
            lines = path.read_text(encoding="utf-8").splitlines()
            found += [line for line in lines if line.strip()]
        else:
            found += texts_from_table(path, config)
    if not found:
        raise UsageError("nothing to classify: give texts as arguments or --file")
    return found


# Requests stay well inside the handler's limits (INFERENCE_MAX_TEXTS 4096 texts and
# INFERENCE_MAX_BODY_BYTES 6 MiB, SageMaker's payload cap) and its 60 s deadline.
INVOKE_MAX_TEXTS = 256
INVOKE_MAX_BYTES = 5 * 1024 * 1024


def request_chunks(texts: Sequence[Item]) -> Iterator[list[Item]]:
    """Consecutive runs of ``texts`` (texts or text pairs) whose JSON request fits the limits
    (order kept)."""
    chunk: list[Item] = []
    size = len(b'{"inputs": []}')
    for text in texts:
        cost = len(json.dumps(text, ensure_ascii=False).encode("utf-8")) + 2
        if chunk and (len(chunk) >= INVOKE_MAX_TEXTS or size + cost > INVOKE_MAX_BYTES):
            yield chunk
            chunk, size = [], len(b'{"inputs": []}')
        if size + cost > INVOKE_MAX_BYTES:
            raise UsageError(f"a text of {cost} bytes is over the endpoint's payload limit")
        chunk.append(text)
        size += cost
    if chunk:
        yield chunk


def invoke(aws: Aws, endpoint_name: str, texts: Sequence[Item], multi_label: bool = False) -> list[Any]:
    """Send texts (or text pairs) as JSON requests of at most INVOKE_MAX_TEXTS; returns per
    text, in the order of ``texts``, its {"label", "score"} or, for a ``multi_label`` model,
    the list of those it decides (possibly empty)."""
    runtime = aws.client("sagemaker-runtime")
    answers: list[Any] = []
    for chunk in request_chunks(texts):
        response = runtime.invoke_endpoint(
            EndpointName=endpoint_name,
            Body=json.dumps({"inputs": chunk}, ensure_ascii=False).encode("utf-8"),
            ContentType=JSON,
            Accept=JSON,
        )
        answer = json.loads(response["Body"].read().decode("utf-8"))
        if not isinstance(answer, list) or len(answer) != len(chunk):
            raise UsageError(f"unexpected response from {endpoint_name}: {str(answer)[:300]}")
        if multi_label:
            answers += [item if isinstance(item, list) else [item] for item in answer]
        else:
            answers += [item[0] if isinstance(item, list) else item for item in answer]
    return answers


def delete(aws: Aws, names: ProjectNames, endpoint_name: str) -> list[Removed]:
    """Remove the endpoint, its endpoint config and models, and leftovers named after it."""
    client = aws.client("sagemaker")
    removed: list[Removed] = []
    configs: set[str] = set()
    described = _describe_endpoint(client, endpoint_name)
    if described:
        configs.add(described["EndpointConfigName"])
        removed += disable_autoscaling(aws, endpoint_name)
        client.delete_endpoint(EndpointName=endpoint_name)
        removed.append(Removed("endpoint", endpoint_name))
    # Leftovers of failed or replaced deployments are named as its models and configs are:
    # <base>-<timestamp> exactly (not another endpoint's <base>-blue-<timestamp>).
    base = names.endpoint_models(endpoint_name)
    own = re.compile(rf"{re.escape(base)}-\d{{8}}-\d{{6}}")
    configs |= {
        c["EndpointConfigName"]
        for c in paged(client, "list_endpoint_configs", "EndpointConfigs", NameContains=base)
        if own.fullmatch(c["EndpointConfigName"])
    }
    models = {
        m["ModelName"]
        for m in paged(client, "list_models", "Models", NameContains=base)
        if own.fullmatch(m["ModelName"])
    }
    return removed + _remove_unused(client, configs, models, exclude=endpoint_name)


def _remove_unused(
    client: Any, configs: Iterable[str] = (), models: Iterable[str] = (), exclude: str = ""
) -> list[Removed]:
    """Delete the endpoint configs that no endpoint (other than ``exclude``) uses, then their
    models and ``models`` that no endpoint config in use names."""
    removed: list[Removed] = []
    in_use = _configs_in_use(client, exclude)
    candidates = set(models)
    for name in sorted(set(configs) - in_use):
        served = _served_models(client, name)
        if served is None:
            continue  # deleted meanwhile
        candidates |= served
        client.delete_endpoint_config(EndpointConfigName=name)
        removed.append(Removed("endpoint config", name))
    models_in_use = set().union(*(_served_models(client, name) or set() for name in in_use))
    for name in sorted(candidates - models_in_use):
        try:
            client.delete_model(ModelName=name)
        except client.exceptions.ClientError as error:
            log.warning("model %s: %s", name, error)
            continue
        removed.append(Removed("model", name))
    return removed


def _configs_in_use(client: Any, exclude: str) -> set[str]:
    """The configs endpoints run, and the ones an update in progress is moving them to (its
    PendingDeploymentSummary): neither may be deleted, whatever the caller is cleaning up."""
    names = set()
    for endpoint in paged(client, "list_endpoints", "Endpoints"):
        if endpoint["EndpointName"] == exclude or endpoint.get("EndpointStatus") == "Deleting":
            continue
        described = _describe_endpoint(client, endpoint["EndpointName"])
        if described is None:
            continue  # deleted meanwhile
        names.add(described["EndpointConfigName"])
        pending = (described.get("PendingDeploymentSummary") or {}).get("EndpointConfigName")
        if pending:
            names.add(pending)
    return names


def _served_models(client: Any, config_name: str) -> set[str] | None:
    """The models an endpoint config names; None when it was deleted meanwhile. A config that
    cannot be read for another reason raises: its models might be ones we were about to delete."""
    try:
        described = client.describe_endpoint_config(EndpointConfigName=config_name)
    except client.exceptions.ClientError as error:
        if not is_not_found(error):
            raise
        return None
    return {v["ModelName"] for v in described.get("ProductionVariants", [])}


@dataclass
class Listing:
    endpoints: list[dict[str, str]]
    endpoint_configs: list[str]
    models: list[str]
    training_jobs: list[dict[str, str]]
    transform_jobs: list[dict[str, str]]

    def is_empty(self) -> bool:
        return not (self.endpoints or self.endpoint_configs or self.models)


def _tagged(client: Any, arn: str, slug: str) -> bool:
    try:
        tags = client.list_tags(ResourceArn=arn).get("Tags", [])
    except client.exceptions.ClientError:
        return False  # deleted meanwhile
    return any(t["Key"] == PROJECT_TAG and t["Value"] == slug for t in tags)


def list_resources(aws: Aws, slug: str) -> Listing:
    """This project's SageMaker resources: those tagged ``project=<slug>`` (whatever their
    names; other projects' resources are never touched)."""
    client = aws.client("sagemaker")

    def mine(operation: str, key: str, arn_field: str) -> list[dict[str, Any]]:
        return [item for item in paged(client, operation, key) if _tagged(client, item[arn_field], slug)]

    return Listing(
        endpoints=[
            {"name": e["EndpointName"], "status": str(e.get("EndpointStatus", ""))}
            for e in mine("list_endpoints", "Endpoints", "EndpointArn")
        ],
        endpoint_configs=[
            c["EndpointConfigName"]
            for c in mine("list_endpoint_configs", "EndpointConfigs", "EndpointConfigArn")
        ],
        models=[m["ModelName"] for m in mine("list_models", "Models", "ModelArn")],
        training_jobs=[
            {"name": j["TrainingJobName"], "status": str(j.get("TrainingJobStatus"))}
            for j in mine("list_training_jobs", "TrainingJobSummaries", "TrainingJobArn")
        ],
        transform_jobs=[
            {"name": j["TransformJobName"], "status": str(j.get("TransformJobStatus"))}
            for j in mine("list_transform_jobs", "TransformJobSummaries", "TransformJobArn")
        ],
    )


def stop_running_jobs(aws: Aws, listing: Listing) -> list[Removed]:
    """Stop this project's training and transform jobs that still run (a job launched with
    --no-wait bills until it ends); their records stay, as SageMaker keeps every job's."""
    from .jobs import TERMINAL, stop_job, stop_transform_job

    stopped = []
    for kind, jobs, stop in (
        ("training job", listing.training_jobs, stop_job),
        ("transform job", listing.transform_jobs, stop_transform_job),
    ):
        for job in jobs:
            if job["status"] not in (*TERMINAL, "Stopping"):
                stop(aws, job["name"])
                stopped.append(Removed(kind, job["name"]))
    return stopped


def delete_all(aws: Aws, slug: str) -> list[Removed]:
    """Every endpoint, endpoint config and model tagged as this project's. Running jobs are
    the caller's to stop first (stop_running_jobs); the records of jobs stay."""
    removed: list[Removed] = []
    listing = list_resources(aws, slug)
    for endpoint in listing.endpoints:
        removed += delete(aws, ProjectNames.of(slug), endpoint["name"])
    # A deployment's model and endpoint config share one name: compare kind and name.
    gone = {(r.kind, r.name) for r in removed}
    configs = [name for name in listing.endpoint_configs if ("endpoint config", name) not in gone]
    models = [name for name in listing.models if ("model", name) not in gone]
    return removed + _remove_unused(aws.client("sagemaker"), configs, models)


def texts_from_table(path: Path, config: ProjectConfig) -> list[Item]:
    """The inputs of a data file: text pairs where it has a text-pair project's two text
    columns (or the container's CSV columns ``inputs`` and ``text_pair``), else the texts of its
    configured text column (or an ``inputs`` column)."""
    table = read_table(path)
    data = config.data
    choices = [["inputs"]]
    if data.pair_column is not None:
        choices = [list(data.text_columns), ["inputs", "text_pair"], [data.text_column], *choices]
    else:
        choices = [[data.text_column], *choices]
    columns = next((c for c in choices if all(name in table.columns for name in c)), None)
    if columns is None:
        raise DataFormatError(
            f"{path}: no {' and '.join(map(repr, data.text_columns))} (or 'inputs') column"
            f"{'s' if data.pair_column else ''}; has {', '.join(table.columns)}"
        )
    texts: list[Item] = []
    for row in table.rows:
        cells = [row.values[column] for column in columns]
        for column, cell in zip(columns, cells, strict=True):
            if not isinstance(cell, str):
                raise DataFormatError(f"{path}: line {row.line}: {column!r} must hold text")
        texts.append(cells[0] if len(cells) == 1 else {"text": cells[0], "text_pair": cells[1]})
    return texts


def jsonl_for_transform(config: ProjectConfig, path: Path, destination: Path) -> Path:
    """A local data file as JSON Lines request records ``{"inputs": text}`` (a text-pair
    project's: ``{"inputs": {"text": ..., "text_pair": ...}}``), one per line."""
    write_jsonl(destination, ({"inputs": text} for text in texts_from_table(path, config)))
    return destination


# 1 MB of JSON Lines is at most ~10,000 short reviews; the timeout is the service maximum.
BATCH_MAX_PAYLOAD_MB = 1
BATCH_MAX_TEXTS = 20_000
BATCH_INVOCATION_TIMEOUT_S = 3600


@dataclass
class TransformResult:
    job_name: str
    model_name: str
    image: str
    input_uri: str
    output_uri: str
    status: str
    model_removed: bool


def batch_transform(
    config: ProjectConfig,
    aws: Aws,
    source: ModelSource,
    input_uri: str,
    *,
    output_uri: str | None = None,
    instance_type: str,
    instance_count: int = 1,
    wait: bool = True,
) -> TransformResult:
    """JSON Lines in (split by line, several records per request), one prediction line out.

    ``input_uri`` is an s3:// file or prefix, or a local file from :func:`jsonl_for_transform`.
    """
    from sagemaker.core.resources import TransformJob

    image = inference_image(config, aws, source, instance_type)
    names = ProjectNames.of(config.project.slug)
    job_name = names.batch_job(timestamp())
    if not input_uri.startswith("s3://"):
        input_uri = aws.upload(Path(input_uri), names.batch_input(aws.bucket, job_name))
    output_uri = (output_uri or names.batch_output(aws.bucket, job_name)).rstrip("/")
    # A MultiRecord request holds as many lines as fit in the payload: far more texts than the
    # real-time limit allows, and more work than the 60 s real-time deadline.
    tags = project_tags(config, source.run_id)
    delete_model = create_model(
        aws, job_name, image, source, tags, environment={"INFERENCE_MAX_TEXTS": str(BATCH_MAX_TEXTS)}
    )
    started = removed = False
    try:
        # sagemaker-core validates these dicts into its shapes (TransformInput, ...).
        job = TransformJob.create(
            transform_job_name=job_name,
            model_name=job_name,
            batch_strategy="MultiRecord",
            max_payload_in_mb=BATCH_MAX_PAYLOAD_MB,
            model_client_config={
                "invocations_timeout_in_seconds": BATCH_INVOCATION_TIMEOUT_S,
                "invocations_max_retries": 1,
            },
            transform_input={
                "data_source": {"s3_data_source": {"s3_data_type": "S3Prefix", "s3_uri": input_uri}},
                "content_type": JSONLINES,
                "split_type": "Line",
            },
            transform_output={"s3_output_path": output_uri, "accept": JSONLINES, "assemble_with": "Line"},
            transform_resources={"instance_type": instance_type, "instance_count": instance_count},
            tags=[_tag_shape(t) for t in tags],
            session=aws.boto,
            region=aws.settings.region,
        )
        started = True
        if wait:
            job.wait(logs=False)
        job.refresh()
    finally:
        # The model only serves this job: once it has ended (or could not start), keeping the
        # model would leak it. Without waiting it stays, tagged, for `delete --all`.
        if wait or not started:
            delete_model()
            removed = True
    return TransformResult(
        job_name, job_name, image, input_uri, output_uri, str(job.transform_job_status), removed
    )
