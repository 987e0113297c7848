"""``sagemaker`` command group: train, deploy, invoke, batch-transform, list, delete, images.

The SageMaker SDK (and the modules that use it) are imported only when a command runs, so
``--help`` works without the ``sagemaker`` extra and a missing extra is a one-line error naming
the install command.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib.util
import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..config import ProjectConfig, load_config
from ..errors import UsageError
from ..training.entry_points import entry_points
from .images import Versions, below_floor, check_instance_type, image_uri, supported_versions
from .jobs import JobInfo, LogReader, describe_job, stop_any_job, wait_for_job
from .names import ProjectNames
from .session import Aws, AwsSettings, check_api_value, project_tags, resolve_settings

log = logging.getLogger(__name__)


def _aws_command(handler: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Run a handler with the SDK present; AWS refusals and failed jobs become one-line errors
    (e.g. ResourceLimitExceeded names the quota to raise) instead of tracebacks."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        for module in ("sagemaker", "boto3"):
            if importlib.util.find_spec(module) is None:
                raise UsageError(
                    f"the SageMaker commands need the optional extra: pip install -e '.[sagemaker]' "
                    f"({module} is not installed)"
                )
        from botocore.exceptions import BotoCoreError, ClientError
        from sagemaker.core.utils.exceptions import WaiterError

        try:
            return handler(args)
        except (ClientError, BotoCoreError, WaiterError) as error:
            raise UsageError(f"AWS: {error}") from error

    return run


def _aws_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("AWS (default: [sagemaker] of config.toml, then environment)")
    group.add_argument("--region", help="AWS region (else config, AWS_REGION, AWS_DEFAULT_REGION)")
    group.add_argument("--role", help="SageMaker execution role ARN (else config, SAGEMAKER_ROLE)")
    group.add_argument("--bucket", help="S3 bucket (else config, SAGEMAKER_BUCKET, SDK default)")


def _settings(args: argparse.Namespace, config: ProjectConfig, need_role: bool = False) -> AwsSettings:
    return resolve_settings(
        config, region=args.region, role=args.role, bucket=args.bucket, need_role=need_role
    )


def _model_source_arguments(parser: argparse.ArgumentParser, *, package: bool = True) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--job", help="name of a completed training job whose model to use")
    source.add_argument("--model-data", help="model.tar.gz (local file or s3:// URI) with code/inference.py")
    if package:
        source.add_argument(
            "--model-package",
            metavar="ARN|latest-approved",
            help="an Approved version of the project's model package group (see `sagemaker register`)",
        )


def register(subparsers: Any) -> None:
    group = subparsers.add_parser(
        "sagemaker",
        help="train on SageMaker, deploy endpoints, batch transform, clean up",
        description="Amazon SageMaker launchers (needs the 'sagemaker' extra and AWS "
        "credentials, except `train --mode process` and `images`). See docs/sagemaker.md.",
    )
    commands = group.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train",
        help="run a training entry point as a SageMaker job (or locally)",
        description="Launch training. Modes: hosted (ml.* instances), local (SageMaker local "
        "mode with Docker; local_gpu is picked when a GPU is visible), local_gpu, process "
        "(no Docker: the entry point in a subprocess with the container's environment).",
    )
    train.add_argument("--mode", default="hosted", choices=("hosted", "local", "local_gpu", "process"))
    train.add_argument(
        "--entry-point",
        choices=entry_points(),
        help="a training/train_*.py module: train_hf (Hugging Face Trainer), train_torch (plain "
        "PyTorch loop), ... (default: config)",
    )
    train.add_argument("--instance-type", help="e.g. ml.g5.2xlarge (default: config)")
    train.add_argument("--instance-count", type=int, help="instances (default: config)")
    train.add_argument("--transformers-version", help="training image version (default: config)")
    train.add_argument("--pytorch-version", help="training image version (default: config)")
    train.add_argument("--py-version", help="e.g. py312 (default: config)")
    for channel in ("train", "validation", "test"):
        train.add_argument(
            f"--{channel}",
            metavar="FOLDER_OR_S3",
            help=f"{channel} channel (default: <prepared_dir>/{channel})",
        )
    train.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a hyperparameter (repeatable), e.g. --hp epochs=1",
    )
    train.add_argument(
        "--spot",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="managed spot training (default: config use_spot)",
    )
    train.add_argument("--max-run", type=int, metavar="SECONDS", help="maximum training time")
    train.add_argument(
        "--max-wait", type=int, metavar="SECONDS", help="spot only: maximum time including waits for capacity"
    )
    train.add_argument("--distribution", choices=("auto", "torchrun", "none"))
    train.add_argument(
        "--output-path", help="s3:// prefix for model.tar.gz (hosted); local folder for local mode"
    )
    train.add_argument(
        "--checkpoint-s3-uri",
        help="hosted: checkpoint location synced with /opt/ml/checkpoints; reuse "
        "an earlier job's to resume from it (default: a new per-run prefix)",
    )
    train.add_argument(
        "--work-dir",
        type=Path,
        help="process mode: folder for the /opt/ml tree (default: sagemaker-process in the project folder)",
    )
    train.add_argument(
        "--python",
        metavar="EXECUTABLE",
        help="process mode: the Python that runs the entry point (default: this one), e.g. a "
        "virtualenv pinned like the training image",
    )
    train.add_argument(
        "--mlflow",
        metavar="ARN_OR_URI",
        help="MLflow tracking server the entry point logs to: a SageMaker MLflow ARN or an "
        "http(s) URL (process mode: also a local store such as sqlite:///mlflow.db); default: "
        "config mlflow_tracking_server, then MLFLOW_TRACKING_URI; none: nothing is tracked",
    )
    train.add_argument("--no-wait", action="store_true", help="return once the job is created")
    train.add_argument(
        "--dry-run", action="store_true", help="validate and print the plan; touch neither AWS nor Docker"
    )
    _aws_arguments(train)
    train.set_defaults(handler=_train)

    for verb, text in (
        ("describe", "status, inputs, checkpoints, model and metrics of a training job"),
        ("logs", "a training job's CloudWatch log lines (--follow: until it ends)"),
        ("stop", "stop a running training or batch transform job"),
    ):
        job_parser = commands.add_parser(verb, help=text)
        job_parser.add_argument("job", help="training job name (= run id, printed at launch)")
        if verb == "describe":
            job_parser.add_argument("--json", action="store_true", help="machine-readable output")
        if verb == "logs":
            job_parser.add_argument("--follow", action="store_true", help="stream until the job ends")
        _aws_arguments(job_parser)
        job_parser.set_defaults(handler={"describe": _describe, "logs": _logs, "stop": _stop}[verb])

    deploy = commands.add_parser("deploy", help="deploy a model as a real-time endpoint")
    _model_source_arguments(deploy)
    deploy.add_argument(
        "--endpoint-name",
        help="default: config endpoint_name or <prefix>-endpoint (prefix: the slug, 38 characters at most)",
    )
    deploy.add_argument("--instance-type", help="default: config inference_instance_type")
    deploy.add_argument(
        "--instance-count",
        type=int,
        help="instances (default: 1; with --update: the endpoint's current count)",
    )
    deploy.add_argument(
        "--serverless-memory",
        type=int,
        metavar="MB",
        help="serverless endpoint with this memory (1024-6144 MB), no instances",
    )
    deploy.add_argument("--serverless-concurrency", type=int, default=5)
    deploy.add_argument(
        "--autoscale", metavar="MIN:MAX", help="scale the instance count between MIN and MAX on invocations"
    )
    deploy.add_argument(
        "--target-invocations",
        type=int,
        default=100,
        metavar="N",
        help="--autoscale target: invocations per instance per minute",
    )
    deploy.add_argument("--no-wait", action="store_true", help="do not wait for InService")
    deploy.add_argument(
        "--update",
        action="store_true",
        help="swap the existing endpoint to this model with no downtime (new endpoint config, "
        "UpdateEndpoint, then the old config and model are removed)",
    )
    rollout = deploy.add_argument_group("--update traffic shifting (blue/green; not serverless)")
    rollout.add_argument(
        "--traffic",
        metavar="all-at-once|canary:PERCENT|linear:PERCENT",
        help="how traffic moves to the new fleet (default: all-at-once); both fleets are billed "
        "until the shift and its bake time end",
    )
    rollout.add_argument(
        "--traffic-wait",
        type=int,
        metavar="SECONDS",
        help="bake time after each shift, while the rollback alarms are watched (default: 300 with "
        "canary/linear or alarms, else 0)",
    )
    rollout.add_argument(
        "--termination-wait",
        type=int,
        metavar="SECONDS",
        help="keep the old fleet this long after the last shift (default: 0)",
    )
    rollout.add_argument(
        "--max-update-time",
        type=int,
        metavar="SECONDS",
        help="the whole update's limit, 600-28800 (default: SageMaker's)",
    )
    rollout.add_argument(
        "--rollback-alarm",
        action="append",
        default=[],
        metavar="NAME",
        help="CloudWatch alarm that rolls the update back while it is in alarm (repeatable, up to 10)",
    )
    _aws_arguments(deploy)
    deploy.set_defaults(handler=_deploy)

    register_parser = commands.add_parser(
        "register",
        help="add a model to the project's model registry (as PendingManualApproval)",
        description="Registers a version in the model package group named after the project, with "
        "its evaluation metrics and the inference image it is tested with. Approve it (Studio, "
        "or `aws sagemaker update-model-package --model-approval-status Approved`), then "
        "`deploy --model-package latest-approved`.",
    )
    _model_source_arguments(register_parser, package=False)
    register_parser.add_argument(
        "--metrics",
        type=Path,
        help="metrics.json written by `evaluate` (default with --job: the job's final metrics)",
    )
    register_parser.add_argument("--description", default="", help="shown in the registry")
    _aws_arguments(register_parser)
    register_parser.set_defaults(handler=_register)

    invoke = commands.add_parser("invoke", help="classify texts with the endpoint")
    invoke.add_argument("texts", nargs="*", help="texts to classify")
    invoke.add_argument("--file", help="a .txt file (one text per line) or a data file")
    invoke.add_argument(
        "--text-pair",
        help="the second text of a text pair, for a model trained on pairs (with one text argument)",
    )
    invoke.add_argument("--endpoint-name")
    invoke.add_argument("--json", action="store_true", help="print the raw JSON answers")
    _aws_arguments(invoke)
    invoke.set_defaults(handler=_invoke)

    batch = commands.add_parser(
        "batch-transform",
        help="predict a JSON Lines file with a batch transform job",
        description='Input: an s3:// JSON Lines file or prefix with {"inputs": text} records, '
        "or a local data file (converted from the configured text column and uploaded). "
        "Output: one JSON line per input record.",
    )
    _model_source_arguments(batch)
    batch.add_argument("--input", required=True, help="s3:// URI or local data file")
    batch.add_argument("--output", help="s3:// prefix for the predictions")
    batch.add_argument("--instance-type", help="default: config inference_instance_type")
    batch.add_argument("--instance-count", type=int, default=1)
    batch.add_argument("--no-wait", action="store_true")
    _aws_arguments(batch)
    batch.set_defaults(handler=_batch_transform)

    listing = commands.add_parser("list", help="list this project's SageMaker resources")
    _aws_arguments(listing)
    listing.set_defaults(handler=_list)

    delete = commands.add_parser("delete", help="delete an endpoint with its config and model")
    target = delete.add_mutually_exclusive_group()
    target.add_argument(
        "--endpoint-name",
        help="default: config endpoint_name or <prefix>-endpoint (prefix: the slug, 38 characters at most)",
    )
    target.add_argument(
        "--all",
        action="store_true",
        help="stop this project's running jobs, delete every endpoint, endpoint config and model of it",
    )
    _aws_arguments(delete)
    delete.set_defaults(handler=_delete)

    images = commands.add_parser("images", help="list the Hugging Face image versions (offline)")
    images.add_argument("--scope", choices=("training", "inference"), default="training")
    images.set_defaults(handler=_images)


@_aws_command
def _train(args: argparse.Namespace) -> int:
    from .training import (
        BASE_MODEL_CHANNEL,
        count_gpus,
        folder_digest,
        parse_overrides,
        plan_training,
        train,
    )

    config = load_config(args.config)
    section = config.sagemaker
    mode = args.mode
    if mode == "local":
        mode = "local_gpu" if count_gpus() else "local"  # GPU containers need a visible GPU
        log.info("local mode: using %s", mode)
    versions = Versions(
        args.transformers_version or section.transformers_version,
        args.pytorch_version or section.pytorch_version,
        args.py_version or section.py_version,
    )
    hosted = mode == "hosted"
    plan = plan_training(
        config,
        mode=mode,
        entry_point=args.entry_point,
        instance_type=args.instance_type,
        instance_count=args.instance_count,
        versions=versions,
        channels={"train": args.train, "validation": args.validation, "test": args.test},
        overrides=parse_overrides(args.hp),
        use_spot=args.spot,
        max_run_seconds=args.max_run,
        max_wait_seconds=args.max_wait,
        distribution=args.distribution,
        output_path=args.output_path if hosted else None,
        region=args.region,
        checkpoint_s3_uri=args.checkpoint_s3_uri,
        python=args.python,
        tracking_uri=args.mlflow
        or section.mlflow_tracking_server
        or os.environ.get("MLFLOW_TRACKING_URI", ""),
    )
    if not hosted and args.output_path:
        plan = dataclasses.replace(plan, output_path=args.output_path)
    settings = None
    if hosted:
        settings = _settings(args, config, need_role=True)
    elif mode != "process":
        settings = resolve_settings(config, region=args.region, need_role=False)
    if args.dry_run:
        summary = dataclasses.asdict(plan)
        if settings is not None:
            summary["image"] = image_uri(plan.versions, "training", settings.region, plan.instance_type)
            summary["region"], summary["role"] = settings.region, settings.role
        if plan.base_model_dir:
            summary.pop("base_model_dir")
            if hosted:
                assert settings is not None
                bucket = settings.bucket or f"sagemaker-{settings.region}-<account>"
                digest = folder_digest(Path(plan.base_model_dir))[:16]
                source = ProjectNames.of(config.project.slug).base_models(bucket, digest)
                summary["base_model_upload"] = (
                    f"{plan.base_model_dir} -> {source} (uploaded once, reused while unchanged)"
                )
            else:
                source = plan.base_model_dir
            summary["channels"][BASE_MODEL_CHANNEL] = source
        print(json.dumps(summary, indent=2, ensure_ascii=False, default=str))
        return 0
    if hosted:
        assert settings is not None
        Aws(settings).preflight("training")

    def announce(job: JobInfo, output_path: str) -> None:
        print(f"training job {job.name} created (run id {job.name})")
        for name, uri in sorted(job.data.items()):
            print(f"  input {name}: {uri}")
        print(f"  checkpoints: {job.checkpoint_uri}")
        print(f"  model: {output_path.rstrip('/')}/{job.name}/output/model.tar.gz")
        print(f"  MLflow: {plan.tracking_uri or 'off (no tracking server configured)'}")
        print(f"  follow it: sagemaker logs {job.name}; stop it: sagemaker stop {job.name}")
        sys.stdout.flush()

    result = train(config, plan, settings, wait=not args.no_wait, work_dir=args.work_dir, on_launch=announce)
    print(f"{result.mode} training {result.job_name}: {result.status or 'created'}")
    print(f"model: {result.model_location}")
    for name, value in sorted(result.metrics.items()):
        print(f"  {name}={value:g}")
    return 0


@_aws_command
def _describe(args: argparse.Namespace) -> int:
    info = describe_job(Aws(_settings(args, load_config(args.config))), args.job)
    if args.json:
        print(json.dumps(dataclasses.asdict(info), indent=2, ensure_ascii=False))
        return 0
    print(f"training job {info.name}: {info.status} ({info.secondary_status})")
    if info.failure_reason:
        print(f"  failure: {info.failure_reason}")
    print(f"  instances: {info.instance}")
    print(f"  image: {info.image}")
    for name, uri in sorted(info.data.items()):
        print(f"  input {name}: {uri}")
    print(f"  checkpoints: {info.checkpoint_uri or '-'}")
    print(f"  model: {info.model_data or '-'}")
    print(f"  billable seconds: {info.billable_seconds}")
    for name, value in sorted(info.final_metrics.items()):
        print(f"  {name}={value:g}")
    return 0


@_aws_command
def _logs(args: argparse.Namespace) -> int:
    aws = Aws(_settings(args, load_config(args.config)))
    if args.follow:
        wait_for_job(aws, args.job)
        return 0
    lines = list(LogReader(aws, args.job).read())
    for line in lines:
        print(line)
    if not lines:
        print(f"no log lines yet for {args.job} in {aws.settings.region}")
    return 0


@_aws_command
def _stop(args: argparse.Namespace) -> int:
    kind, status = stop_any_job(Aws(_settings(args, load_config(args.config))), args.job)
    print(f"{kind} {args.job}: {status}")
    return 0


def _source(args: argparse.Namespace, config: ProjectConfig) -> tuple[str, str]:
    from .endpoints import resolve_model_source

    return resolve_model_source(
        config, job=args.job, model_data=args.model_data, model_package=getattr(args, "model_package", None)
    )


def _endpoint_name(args: argparse.Namespace, config: ProjectConfig) -> str:
    """The endpoint to deploy, checked against the API's rules before anything is created; one
    named outside the project's prefix is allowed with a warning (the documented policy denies it)."""
    from .endpoints import default_endpoint_name

    name = args.endpoint_name or default_endpoint_name(config)
    given = "--endpoint-name" if args.endpoint_name else "config.toml [sagemaker] endpoint_name"
    check_api_value(name, "EndpointName", given)
    names = ProjectNames.of(config.project.slug)
    if not names.owns(name):
        log.warning(
            "endpoint %s does not start with %s-: the caller policy in docs/sagemaker.md (2.3) grants "
            "only names that do; add arn:aws:sagemaker:<REGION>:<ACCOUNT_ID>:endpoint/%s to it "
            "(SageMaker writes names into ARNs in lower case)",
            name,
            names.prefix,
            name.lower(),
        )
    return name


@_aws_command
def _deploy(args: argparse.Namespace) -> int:
    from .autoscaling import check_autoscaling, parse_autoscaling
    from .endpoints import check_update, deploy, materialise_model_source, plan_deploy
    from .rollout import check_rollout_alarms, plan_rollout

    config = load_config(args.config)
    settings = _settings(args, config, need_role=True)
    kind, value = _source(args, config)
    instance_type = plan_deploy(
        config, instance_type=args.instance_type, serverless_memory_mb=args.serverless_memory
    )
    if args.instance_count is not None and args.instance_count < 1:
        raise UsageError("--instance-count must be at least 1")
    # None on --update: the endpoint's current count (an autoscaled fleet keeps its size).
    instance_count = 1 if args.instance_count is None and not args.update else args.instance_count
    endpoint_name = _endpoint_name(args, config)
    if args.serverless_memory:
        check_api_value(args.serverless_concurrency, "ServerlessMaxConcurrency", "--serverless-concurrency")
    scaling = parse_autoscaling(args.autoscale, args.target_invocations) if args.autoscale else None
    check_autoscaling(
        scaling,
        serverless=bool(args.serverless_memory),
        wait=not args.no_wait,
        instance_count=instance_count,
    )
    rollout = plan_rollout(
        args.traffic,
        wait_seconds=args.traffic_wait,
        termination_wait_seconds=args.termination_wait,
        max_seconds=args.max_update_time,
        alarms=args.rollback_alarm,
        update=args.update,
        serverless=bool(args.serverless_memory),
    )
    aws = Aws(settings)
    aws.preflight("serving")
    # Before any upload:
    check_update(aws, endpoint_name, update=args.update, wait=not args.no_wait, rollout=rollout)
    check_rollout_alarms(aws, rollout)
    source = materialise_model_source(config, aws, kind, value)
    result = deploy(
        config,
        aws,
        source,
        endpoint_name=endpoint_name,
        instance_type=instance_type,
        instance_count=instance_count,
        serverless_memory_mb=args.serverless_memory,
        serverless_max_concurrency=args.serverless_concurrency,
        autoscaling=scaling,
        wait=not args.no_wait,
        update=args.update,
        rollout=rollout,
    )
    print(f"endpoint {result.endpoint_name}: {result.status}{' (updated)' if args.update else ''}")
    if result.autoscaling:
        print(f"  autoscaling: {result.autoscaling}")
    if result.rollout:
        print(f"  rollout: {result.rollout}")
    print(f"  endpoint config: {result.endpoint_config_name}")
    print(f"  model: {result.model_name} ({result.model_data})")
    print(f"  image: {result.image}")
    print("It is billed while it exists: remove it with `sagemaker delete`.")
    return 0


@_aws_command
def _register(args: argparse.Namespace) -> int:
    from .endpoints import materialise_model_source
    from .registry import list_versions, metrics_for_job, numeric_metrics, register

    config = load_config(args.config)
    kind, value = _source(args, config)
    metrics: dict[str, float] | None = None
    if args.metrics is not None:
        try:
            metrics = numeric_metrics(json.loads(args.metrics.read_text(encoding="utf-8")))
        except (OSError, ValueError) as error:
            raise UsageError(f"--metrics {args.metrics}: {error}") from None
        if not metrics:
            raise UsageError(f"--metrics {args.metrics}: no numeric metrics in it")
    aws = Aws(_settings(args, config))
    aws.preflight(None)
    if metrics is None and kind == "job":
        metrics = metrics_for_job(aws, value)
    source = materialise_model_source(config, aws, kind, value)
    tags = {t["Key"]: t["Value"] for t in project_tags(config, source.run_id)}
    registered = register(
        config,
        aws,
        source,
        metrics=metrics,
        metrics_uri=None,
        tags=tags,
        description=args.description,
        run_id=source.run_id,
    )
    print(f"model package {registered.arn}: {registered.status}")
    count = len(list_versions(aws, registered.group))
    print(f"  group: {registered.group} (version {registered.version}; {count} in all)")
    print(f"  model: {registered.model_data}")
    print(f"  image: {registered.image}")
    if registered.metrics_uri:
        print(f"  metrics: {registered.metrics_uri}")
    print(
        "Approve it: aws sagemaker update-model-package --model-package-arn "
        f"{registered.arn} --model-approval-status Approved; then: sagemaker deploy "
        "--model-package latest-approved"
    )
    return 0


@_aws_command
def _invoke(args: argparse.Namespace) -> int:
    from .endpoints import default_endpoint_name, invoke, read_texts

    config = load_config(args.config)
    texts = read_texts(args.texts, args.file, config, args.text_pair)
    aws = Aws(_settings(args, config))
    multi_label = config.data.task == "multi_label"
    answers = invoke(aws, args.endpoint_name or default_endpoint_name(config), texts, multi_label)
    if args.json:
        print(json.dumps(answers, ensure_ascii=False, indent=2))
        return 0
    for item, answer in zip(texts, answers, strict=True):
        # A pair is shown as its two texts, tab-separated like the other fields.
        text = item if isinstance(item, str) else f"{item['text']}\t{item['text_pair']}"
        if multi_label:  # the labels the model decides, and their scores, in the same order
            labels = config.data.label_delimiter.join(str(item.get("label")) for item in answer)
            scores = ",".join(f"{float(item.get('score', 0.0)):.4f}" for item in answer)
            print(f"{labels}\t{scores}\t{text}")
        else:
            print(f"{answer.get('label')}\t{float(answer.get('score', 0.0)):.4f}\t{text}")
    return 0


@_aws_command
def _batch_transform(args: argparse.Namespace) -> int:
    from .endpoints import batch_transform, jsonl_for_transform, materialise_model_source

    config = load_config(args.config)
    settings = _settings(args, config, need_role=True)
    kind, value = _source(args, config)
    instance_type = args.instance_type or config.sagemaker.inference_instance_type
    check_instance_type(instance_type, "transform")
    if not args.input.startswith("s3://") and not Path(args.input).is_file():
        raise UsageError(f"--input {args.input}: no such file (or give an s3:// URI)")
    if args.output and not args.output.startswith("s3://"):
        raise UsageError(f"--output must be an s3:// prefix, got {args.output!r}")
    with tempfile.TemporaryDirectory(prefix="sm-batch-") as tmp:
        records = args.input
        if not records.startswith("s3://"):
            # Converted before any AWS call, so a bad file fails without side effects.
            name = Path(args.input).with_suffix(".jsonl").name
            records = str(jsonl_for_transform(config, Path(args.input), Path(tmp) / name))
        aws = Aws(settings)
        aws.preflight("serving")
        source = materialise_model_source(config, aws, kind, value)
        result = batch_transform(
            config,
            aws,
            source,
            records,
            output_uri=args.output,
            instance_type=instance_type,
            instance_count=args.instance_count,
            wait=not args.no_wait,
        )
    print(f"batch transform {result.job_name}: {result.status}")
    print(f"  image: {result.image}")
    print(f"  input: {result.input_uri}")
    print(f"  output: {result.output_uri} (one JSON line per input record)")
    if not result.model_removed:
        print(f"  model {result.model_name} stays until `sagemaker delete --all`")
    return 0


@_aws_command
def _list(args: argparse.Namespace) -> int:
    from .endpoints import list_resources

    config = load_config(args.config)
    aws = Aws(_settings(args, config))
    listing = list_resources(aws, config.project.slug)
    for endpoint in listing.endpoints:
        print(f"endpoint         {endpoint['name']}  {endpoint['status']}")
    for name in listing.endpoint_configs:
        print(f"endpoint config  {name}")
    for name in listing.models:
        print(f"model            {name}")
    for job in listing.training_jobs:
        print(f"training job     {job['name']}  {job['status']}")
    for job in listing.transform_jobs:
        print(f"transform job    {job['name']}  {job['status']}")
    if listing.is_empty():
        print("no endpoints, endpoint configs or models of this project")
    return 0


@_aws_command
def _delete(args: argparse.Namespace) -> int:
    from .endpoints import default_endpoint_name, delete, delete_all, list_resources, stop_running_jobs

    config = load_config(args.config)
    aws = Aws(_settings(args, config))
    if not args.all:
        removed = delete(
            aws, ProjectNames.of(config.project.slug), args.endpoint_name or default_endpoint_name(config)
        )
        for item in removed:
            print(f"deleted {item.kind}: {item.name}")
        if not removed:
            print("nothing to delete")
        return 0
    for item in stop_running_jobs(aws, list_resources(aws, config.project.slug)):
        print(f"stopped {item.kind}: {item.name} (Stopping; billed until it ends)")
    removed = delete_all(aws, config.project.slug)
    for item in removed:
        print(f"deleted {item.kind}: {item.name}")
    if not removed:
        print("no endpoint, endpoint config or model to delete")
    print(_left_in_place(config, aws.settings))
    return 0


def _left_in_place(config: ProjectConfig, settings: AwsSettings) -> str:
    """What `delete --all` does not remove (none of it billed by SageMaker, S3 storage aside),
    with the commands that remove it."""
    from .jobs import LOG_GROUP
    from .registry import group_name

    # The SDK's default bucket is named after the region and the account (not looked up here).
    where = ProjectNames.of(config.project.slug).s3_prefix(
        settings.bucket or f"sagemaker-{settings.region}-<ACCOUNT_ID>"
    )
    lines = ["left in place (remove what you no longer need):"]
    lines.append(f"  S3 data, models and checkpoints: aws s3 rm --recursive {where}/")
    group = group_name(config)
    lines += [
        f"  model registry group {group} (the approval record): aws sagemaker list-model-packages "
        f"--model-package-group-name {group}, then delete-model-package for each and "
        f"delete-model-package-group --model-package-group-name {group}",
        f"  job logs in CloudWatch: aws logs describe-log-streams --log-group-name {LOG_GROUP} "
        "--log-stream-name-prefix <job>, and /aws/sagemaker/TransformJobs",
        "  training and transform job records: SageMaker keeps them (not billed; they cannot be deleted)",
    ]
    return "\n".join(lines)


@_aws_command
def _images(args: argparse.Namespace) -> int:
    for versions, processors in supported_versions(args.scope):
        too_old = below_floor(versions)
        note = f"  (cannot run this project: {too_old})" if too_old else ""
        print(
            f"{versions.transformers:10} pytorch {versions.pytorch:8} {versions.py:6} "
            f"{'/'.join(processors)}{note}"
        )
    return 0
