"""SageMaker endpoints and batch transform against a local moto server (no AWS).

moto cannot run the model: InvokeEndpoint answers come from moto's result queue, so these tests
check what is created, sent and removed. tests/test_serving_*.py cover the handlers themselves.
"""

from __future__ import annotations

import json
import re
import time

import pytest

pytest.importorskip("sagemaker", reason="the 'sagemaker' extra is not installed")
pytest.importorskip("moto.server", reason="moto[server] is not installed")

import aws_moto  # noqa: E402

from nsmc_sentiment_classifier.aws.names import (  # noqa: E402
    ProjectNames,
)
from nsmc_sentiment_classifier.config import load_config  # noqa: E402

pytestmark = pytest.mark.engine

REGION = load_config().sagemaker.region
NAMES = ProjectNames.of(load_config().project.slug)
INFERENCE_IMAGE = (
    f"763104351884.dkr.ecr.{REGION}.amazonaws.com/huggingface-pytorch-inference:"
    "2.6.0-transformers4.51.3-gpu-py312-cu124-ubuntu22.04"
)


@pytest.fixture
def moto_url(monkeypatch, project_dir):
    return aws_moto.activate(monkeypatch, project_dir)


@pytest.fixture
def cli():
    from nsmc_sentiment_classifier import cli

    return cli


@pytest.fixture(scope="module")
def model_archive(pkg, tiny_model_dir, tmp_path_factory):
    from nsmc_sentiment_classifier.serving import package

    archive = tmp_path_factory.mktemp("archive") / "model.tar.gz"
    package.build_model_archive(tiny_model_dir, archive)
    return archive


def test_deploy_invoke_delete_leaves_nothing(moto_url, cli, config, model_archive, capsys, tmp_path):
    endpoint = NAMES.default_endpoint
    code = cli.main(["sagemaker", "deploy", "--model-data", str(model_archive), "--role", aws_moto.FAKE_ROLE])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out + captured.err
    sm = aws_moto.client("sagemaker", REGION)
    described = sm.describe_endpoint(EndpointName=endpoint)
    assert described["EndpointStatus"] == "InService"
    endpoint_config = sm.describe_endpoint_config(EndpointConfigName=described["EndpointConfigName"])
    [variant] = endpoint_config["ProductionVariants"]
    assert variant["InstanceType"] == config.sagemaker.inference_instance_type
    assert variant["InitialInstanceCount"] == 1
    model = sm.describe_model(ModelName=variant["ModelName"])
    container = model["PrimaryContainer"]
    # Trained with transformers 5.3.0, served by the image the container-parity test runs.
    assert container["Image"] == INFERENCE_IMAGE
    assert container["ModelDataUrl"].endswith("/model.tar.gz")
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert model["ExecutionRoleArn"] == aws_moto.FAKE_ROLE
    # The uploaded archive is the local one, byte for byte.
    bucket, key = container["ModelDataUrl"][len("s3://") :].split("/", 1)
    body = aws_moto.client("s3", REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
    assert body == model_archive.read_bytes()

    # A second deploy to the same name is refused before it uploads or creates anything.
    before = aws_moto.sagemaker_leftovers(REGION)
    objects = aws_moto.client("s3", REGION).list_objects_v2(Bucket=bucket)["KeyCount"]
    assert (
        cli.main(["sagemaker", "deploy", "--model-data", str(model_archive), "--role", aws_moto.FAKE_ROLE])
        == 2
    )
    assert f"endpoint {endpoint} already exists" in capsys.readouterr().err
    assert aws_moto.sagemaker_leftovers(REGION) == before
    assert aws_moto.client("s3", REGION).list_objects_v2(Bucket=bucket)["KeyCount"] == objects

    assert cli.main(["sagemaker", "list"]) == 0
    listed = capsys.readouterr().out
    assert f"endpoint         {endpoint}  InService" in listed
    assert f"model            {variant['ModelName']}" in listed

    aws_moto.queue_endpoint_results(
        moto_url,
        REGION,
        [
            [
                {"label": config.data.label_names[1], "score": 0.91},
                {"label": config.data.label_names[0], "score": 0.77},
            ]
        ],
    )
    code = cli.main(["sagemaker", "invoke", "정말 재밌어요", "지루했다"])
    out = capsys.readouterr().out
    assert code == 0
    assert out.splitlines() == [
        f"{config.data.label_names[1]}\t0.9100\t정말 재밌어요",
        f"{config.data.label_names[0]}\t0.7700\t지루했다",
    ]

    # Texts from a data file: its configured text column, read by the project's readers.
    table = tmp_path / "to_invoke.csv"
    table.write_text(f'{config.data.text_column},id\n"최고, 정말",1\n', encoding="utf-8")
    aws_moto.queue_endpoint_results(
        moto_url,
        REGION,
        [
            [
                {"label": config.data.label_names[1], "score": 0.88},
            ]
        ],
    )
    assert cli.main(["sagemaker", "invoke", "--file", str(table)]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{config.data.label_names[1]}\t0.8800\t최고, 정말"]

    code = cli.main(["sagemaker", "delete"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"deleted endpoint: {endpoint}" in out
    assert f"deleted endpoint config: {described['EndpointConfigName']}" in out
    assert f"deleted model: {variant['ModelName']}" in out
    assert aws_moto.sagemaker_leftovers(REGION) == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_deploy_from_training_job_repackages_with_handler(
    moto_url, cli, config, tiny_model_dir, tmp_path, capsys
):
    """A training job's model.tar.gz holds the bare model; deploy adds code/inference.py."""
    import tarfile

    sm = aws_moto.client("sagemaker", REGION)
    s3 = aws_moto.client("s3", REGION)
    s3.create_bucket(Bucket="job-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    sm.create_training_job(
        TrainingJobName="finished-job",
        AlgorithmSpecification={
            "TrainingImage": f"763104351884.dkr.ecr.{REGION}.amazonaws.com/huggingface-pytorch-"
            "training:2.8.0-transformers4.56.2-gpu-py312-cu129-ubuntu22.04",
            "TrainingInputMode": "File",
        },
        RoleArn=aws_moto.FAKE_ROLE,
        OutputDataConfig={"S3OutputPath": "s3://job-bucket/output"},
        ResourceConfig={"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    artifact = sm.describe_training_job(TrainingJobName="finished-job")["ModelArtifacts"]["S3ModelArtifacts"]
    bare = tmp_path / "bare.tar.gz"
    with tarfile.open(bare, "w:gz") as archive:
        for path in tiny_model_dir.iterdir():
            archive.add(path, arcname=path.name)
    bucket, key = artifact[len("s3://") :].split("/", 1)
    s3.upload_file(str(bare), bucket, key)

    code = cli.main(
        [
            "sagemaker",
            "deploy",
            "--job",
            "finished-job",
            "--role",
            aws_moto.FAKE_ROLE,
            "--endpoint-name",
            "from-job",
            "--no-wait",
        ]
    )
    assert code == 0, capsys.readouterr()
    config_name = sm.describe_endpoint(EndpointName="from-job")["EndpointConfigName"]
    [variant] = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    container = sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]
    # Whatever the training image, the inference image is the tested one (4.51.3).
    assert "huggingface-pytorch-inference:2.6.0-transformers4.51.3-gpu-py312" in container["Image"]
    repackaged = tmp_path / "repackaged.tar.gz"
    bucket, key = container["ModelDataUrl"][len("s3://") :].split("/", 1)
    s3.download_file(bucket, key, str(repackaged))
    with tarfile.open(repackaged) as archive:
        names = archive.getnames()
    assert "code/inference.py" in names and "config.json" in names

    assert cli.main(["sagemaker", "delete", "--endpoint-name", "from-job"]) == 0
    assert aws_moto.sagemaker_leftovers(REGION) == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_deploy_refuses_bad_input_before_creating_anything(moto_url, cli, model_archive, tmp_path, capsys):
    not_archive = tmp_path / "model.tar.gz"
    not_archive.write_bytes(b"not a tarball")
    cases = [
        (["--model-data", str(not_archive)], "model.tar.gz"),
        (["--model-data", str(tmp_path / "absent.tar.gz")], "no such file"),
        (
            ["--model-data", str(model_archive), "--instance-type", "ml.tiny.huge"],
            "unknown endpoint instance type 'ml.tiny.huge'",
        ),
        (
            ["--model-data", str(model_archive), "--instance-count", "0"],
            "--instance-count must be at least 1",
        ),
        (["--job", "no-such-job"], "training job 'no-such-job' in ap-northeast-2: Could not find"),
        (["--model-package", "my-model-v2"], "expected a versioned model package ARN"),
        # Names and limits the API would refuse only after a model and an upload were made.
        (
            ["--model-data", str(model_archive), "--endpoint-name", "my_endpoint"],
            "--endpoint-name 'my_endpoint' is not a valid SageMaker EndpointName (pattern "
            "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}): letters, digits and hyphens, starting and ending "
            "with a letter or digit, 63 characters at most; e.g. 'my-endpoint'",
        ),
        (
            ["--model-data", str(model_archive), "--endpoint-name", "e" * 70],
            f"--endpoint-name {'e' * 70!r} is not a valid SageMaker EndpointName (70 characters, over 63)",
        ),
        (
            ["--model-data", str(model_archive), "--endpoint-name", "trailing-hyphen-"],
            "e.g. 'trailing-hyphen'",
        ),
        (
            [
                "--model-data",
                str(model_archive),
                "--serverless-memory",
                "2048",
                "--serverless-concurrency",
                "500",
            ],
            "--serverless-concurrency 500: SageMaker takes 1 to 200 (ServerlessMaxConcurrency)",
        ),
    ]
    for args, message in cases:
        code = cli.main(["sagemaker", "deploy", "--role", aws_moto.FAKE_ROLE, *args])
        assert code == 2
        assert message in capsys.readouterr().err
    assert cli.main(["sagemaker", "deploy", "--model-data", str(not_archive)]) == 2
    assert "no SageMaker execution role" in capsys.readouterr().err
    assert aws_moto.sagemaker_leftovers(REGION) == {"endpoints": [], "endpoint_configs": [], "models": []}
    assert aws_moto.client("s3", REGION).list_buckets()["Buckets"] == []


def test_batch_transform_job_settings(moto_url, cli, config, model_archive, tmp_path, capsys):
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text('{"text_typo": "x"}\n', encoding="utf-8")
    code = cli.main(
        [
            "sagemaker",
            "batch-transform",
            "--model-data",
            str(model_archive),
            "--input",
            str(wrong),
            "--role",
            aws_moto.FAKE_ROLE,
        ]
    )
    assert code == 2
    assert f"{wrong}: no '{config.data.text_column}'" in capsys.readouterr().err
    assert aws_moto.client("s3", REGION).list_buckets()["Buckets"] == []

    texts = ["최고의 영화", "시간 낭비", "그럭저럭"]
    source = tmp_path / "to_score.jsonl"
    source.write_text(
        "".join(
            json.dumps({config.data.text_column: text, "id": i}, ensure_ascii=False) + "\n"
            for i, text in enumerate(texts)
        ),
        encoding="utf-8",
    )
    code = cli.main(
        [
            "sagemaker",
            "batch-transform",
            "--model-data",
            str(model_archive),
            "--input",
            str(source),
            "--role",
            aws_moto.FAKE_ROLE,
            "--instance-type",
            "ml.m5.xlarge",
        ]
    )
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out + captured.err
    sm = aws_moto.client("sagemaker", REGION)
    [summary] = sm.list_transform_jobs()["TransformJobSummaries"]
    job = sm.describe_transform_job(TransformJobName=summary["TransformJobName"])
    assert job["TransformInput"]["ContentType"] == "application/jsonlines"
    assert job["TransformInput"]["SplitType"] == "Line"
    assert job["BatchStrategy"] == "MultiRecord"
    assert job["TransformOutput"]["Accept"] == "application/jsonlines"
    assert job["TransformOutput"]["AssembleWith"] == "Line"
    assert job["TransformResources"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1}
    # Many lines per request: a bounded payload, a long deadline, a raised text limit.
    assert job["MaxPayloadInMB"] == 1
    assert job["ModelClientConfig"]["InvocationsTimeoutInSeconds"] == 3600
    input_uri = job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
    bucket, key = input_uri[len("s3://") :].split("/", 1)
    assert key.endswith("/input/to_score.jsonl")
    uploaded = aws_moto.client("s3", REGION).get_object(Bucket=bucket, Key=key)["Body"].read()
    assert [json.loads(line) for line in uploaded.decode().splitlines()] == [
        {"inputs": text} for text in texts
    ]
    assert job["TransformOutput"]["S3OutputPath"] in out
    # A CPU instance gets the CPU image; the model made for the job is removed after it.
    assert "huggingface-pytorch-inference:2.6.0-transformers4.51.3-cpu-py312" in out
    assert aws_moto.sagemaker_leftovers(REGION)["models"] == []


def test_batch_transform_without_waiting_keeps_model_until_delete_all(
    moto_url, cli, config, model_archive, capsys
):
    s3 = aws_moto.client("s3", REGION)
    s3.create_bucket(Bucket="inputs", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="inputs", Key="texts.jsonl", Body=b'{"inputs": "good"}\n')
    code = cli.main(
        [
            "sagemaker",
            "batch-transform",
            "--model-data",
            str(model_archive),
            "--input",
            "s3://inputs/texts.jsonl",
            "--output",
            "s3://inputs/out",
            "--role",
            aws_moto.FAKE_ROLE,
            "--no-wait",
        ]
    )
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, out + captured.err
    job = aws_moto.client("sagemaker", REGION).describe_transform_job(
        TransformJobName=out.split()[2].rstrip(":")
    )
    # s3:// input is used as it is.
    assert job["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == "s3://inputs/texts.jsonl"
    assert job["TransformOutput"]["S3OutputPath"] == "s3://inputs/out"
    [model] = aws_moto.sagemaker_leftovers(REGION)["models"]
    environment = aws_moto.client("sagemaker", REGION).describe_model(ModelName=model)["PrimaryContainer"][
        "Environment"
    ]
    assert int(environment["INFERENCE_MAX_TEXTS"]) > 4096

    # A --no-wait job bills while it runs: `stop` stops it, and so does `delete --all`.
    name = job["TransformJobName"]
    sm = aws_moto.client("sagemaker", REGION)
    aws_moto.set_transform_job_status(name, REGION, "InProgress")
    assert cli.main(["sagemaker", "stop", name]) == 0
    assert f"transform job {name}: Stopping" in capsys.readouterr().out
    assert sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] == "Stopping"
    aws_moto.set_transform_job_status(name, REGION, "InProgress")
    assert cli.main(["sagemaker", "delete", "--all"]) == 0
    out = capsys.readouterr().out
    assert f"stopped transform job: {name} (Stopping; billed until it ends)" in out
    assert sm.describe_transform_job(TransformJobName=name)["TransformJobStatus"] == "Stopping"
    assert f"deleted model: {model}" in out
    assert aws_moto.sagemaker_leftovers(REGION) == {"endpoints": [], "endpoint_configs": [], "models": []}
    # What it leaves is listed with the commands that remove it.
    assert "left in place (remove what you no longer need):" in out
    assert re.search(rf"aws s3 rm --recursive s3://\S+/{re.escape(NAMES.prefix)}/", out)
    assert "delete-model-package-group --model-package-group-name" in out
    # A job that ended is left as it is.
    aws_moto.set_transform_job_status(name, REGION, "Completed")
    assert cli.main(["sagemaker", "stop", name]) == 0
    assert f"transform job {name}: Completed" in capsys.readouterr().out


def test_serverless_deploy_uses_cpu_image_and_no_instances(moto_url, cli, config, model_archive, capsys):
    code = cli.main(
        [
            "sagemaker",
            "deploy",
            "--model-data",
            str(model_archive),
            "--role",
            aws_moto.FAKE_ROLE,
            "--serverless-memory",
            "2048",
            "--endpoint-name",
            f"{NAMES.prefix}-serverless",
        ]
    )
    assert code == 0, capsys.readouterr()
    sm = aws_moto.client("sagemaker", REGION)
    name = sm.describe_endpoint(EndpointName=f"{NAMES.prefix}-serverless")["EndpointConfigName"]
    [variant] = sm.describe_endpoint_config(EndpointConfigName=name)["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 2048, "MaxConcurrency": 5}
    assert "InstanceType" not in variant
    image = sm.describe_model(ModelName=variant["ModelName"])["PrimaryContainer"]["Image"]
    assert "-transformers4.51.3-cpu-py312" in image
    assert cli.main(["sagemaker", "delete", "--all"]) == 0
    assert aws_moto.sagemaker_leftovers(REGION) == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_autoscaling_is_registered_and_removed_with_the_endpoint(
    moto_url, cli, config, model_archive, capsys
):
    endpoint = NAMES.default_endpoint
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    code = cli.main(
        [
            "sagemaker",
            "deploy",
            "--model-data",
            str(model_archive),
            "--role",
            aws_moto.FAKE_ROLE,
            "--autoscale",
            "1:3",
            "--target-invocations",
            "50",
        ]
    )
    assert code == 0, capsys.readouterr()
    scaling = aws_moto.client("application-autoscaling", REGION)
    [target] = scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert (target["ResourceId"], target["MinCapacity"], target["MaxCapacity"]) == (resource, 1, 3)
    [policy] = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    tracking = policy["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["TargetValue"] == 50.0
    assert tracking["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerVariantInvocationsPerInstance"
    )

    assert cli.main(["sagemaker", "delete"]) == 0
    assert f"deleted autoscaling target: {resource}" in capsys.readouterr().out
    assert scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"] == []
    assert aws_moto.sagemaker_leftovers(REGION) == {"endpoints": [], "endpoint_configs": [], "models": []}

    assert (
        cli.main(
            [
                "sagemaker",
                "deploy",
                "--model-data",
                str(model_archive),
                "--role",
                aws_moto.FAKE_ROLE,
                "--autoscale",
                "2:4",
            ]
        )
        == 2
    )
    assert "--instance-count 1 is outside --autoscale 2:4" in capsys.readouterr().err


def test_failed_deploy_removes_what_it_created(moto_url, cli, model_archive, capsys):
    """moto 5.2 refuses ml.g5.* for endpoints (an outdated list; AWS accepts them): the endpoint
    config fails after the model was created, which must then be removed again."""
    code = cli.main(
        [
            "sagemaker",
            "deploy",
            "--model-data",
            str(model_archive),
            "--role",
            aws_moto.FAKE_ROLE,
            "--instance-type",
            "ml.g5.xlarge",
        ]
    )
    if code == 0:
        pytest.skip("this moto accepts ml.g5 endpoints; no failure to roll back")
    assert code == 2
    assert capsys.readouterr().err.startswith("error: AWS: ")
    assert aws_moto.sagemaker_leftovers(REGION) == {"endpoints": [], "endpoint_configs": [], "models": []}


def test_the_default_inference_image_is_the_tested_pair_and_others_are_flagged(config, caplog):
    import dataclasses
    import logging

    from nsmc_sentiment_classifier.aws.endpoints import (
        inference_versions,
    )
    from nsmc_sentiment_classifier.aws.images import (
        TESTED_INFERENCE,
        Versions,
        check_versions,
    )
    from nsmc_sentiment_classifier.errors import UsageError

    # The pair the container-parity test runs (serving/container.py) has a CPU and a GPU image.
    for processor in ("cpu", "gpu"):
        check_versions(TESTED_INFERENCE, "inference", processor)
    assert inference_versions(config) == TESTED_INFERENCE
    assert not caplog.records

    def with_inference(transformers, pytorch):
        section = dataclasses.replace(
            config.sagemaker, inference_transformers_version=transformers, inference_pytorch_version=pytorch
        )
        return dataclasses.replace(config, sagemaker=section)

    # Naming the tested pair explicitly is not a warning; another pair is, in one line.
    tested = with_inference(TESTED_INFERENCE.transformers, TESTED_INFERENCE.pytorch)
    assert inference_versions(tested) == TESTED_INFERENCE
    assert not caplog.records
    chosen = inference_versions(with_inference("5.5.3", "2.6.0"))
    assert chosen == Versions("5.5.3", "2.6.0", config.sagemaker.py_version)
    [warning] = [record for record in caplog.records if record.levelno == logging.WARNING]
    assert "not the one the container-parity test covers" in warning.getMessage()
    assert "\n" not in warning.getMessage()
    with pytest.raises(UsageError, match="or neither"):
        inference_versions(with_inference("5.5.3", ""))


def _tags(arn: str) -> dict[str, str]:
    tags = aws_moto.client("sagemaker", REGION).list_tags(ResourceArn=arn)["Tags"]
    return {t["Key"]: t["Value"] for t in tags}


def _deploy(cli, archive, *args: str) -> int:
    return cli.main(
        ["sagemaker", "deploy", "--model-data", str(archive), "--role", aws_moto.FAKE_ROLE, *args]
    )


def test_deploy_update_swaps_the_model_without_downtime(moto_url, cli, config, model_archive, capsys):
    endpoint = NAMES.default_endpoint
    assert _deploy(cli, model_archive, "--update") == 2
    assert f"endpoint {endpoint} does not exist; deploy it without --update" in capsys.readouterr().err
    assert _deploy(cli, model_archive) == 0
    sm = aws_moto.client("sagemaker", REGION)
    old_config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    [old_model] = aws_moto.sagemaker_leftovers(REGION)["models"]
    assert _deploy(cli, model_archive, "--update", "--no-wait") == 2
    assert "drop --no-wait" in capsys.readouterr().err
    capsys.readouterr()

    aws_moto.CALLS.clear()
    time.sleep(1)  # a new second: new resource names
    code = _deploy(cli, model_archive, "--update", "--instance-count", "2")
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert "(updated)" in captured.out
    described = sm.describe_endpoint(EndpointName=endpoint)
    new_config = described["EndpointConfigName"]
    assert new_config != old_config
    [variant] = sm.describe_endpoint_config(EndpointConfigName=new_config)["ProductionVariants"]
    assert variant["InitialInstanceCount"] == 2
    # The endpoint was never deleted: a new model and config, UpdateEndpoint, wait, then the
    # old config and model go.
    calls = [c for c in aws_moto.CALLS if not c.startswith(("Describe", "List"))]
    assert calls == [
        "CreateModel",
        "CreateEndpointConfig",
        "UpdateEndpoint",
        "DeleteEndpointConfig",
        "DeleteModel",
    ]
    assert calls.index("UpdateEndpoint") < aws_moto.CALLS.index("DeleteEndpointConfig")
    waited = aws_moto.CALLS[
        aws_moto.CALLS.index("UpdateEndpoint") : aws_moto.CALLS.index("DeleteEndpointConfig")
    ]
    assert "DescribeEndpoint" in waited
    leftovers = aws_moto.sagemaker_leftovers(REGION)
    assert leftovers["endpoint_configs"] == [new_config]
    assert leftovers["models"] == [variant["ModelName"]] and old_model not in leftovers["models"]
    for arn in (
        described["EndpointArn"],
        sm.describe_endpoint_config(EndpointConfigName=new_config)["EndpointConfigArn"],
        sm.describe_model(ModelName=variant["ModelName"])["ModelArn"],
    ):
        assert _tags(arn) == {"project": config.project.slug}


def test_a_rolled_back_update_is_reported_and_its_new_resources_removed(
    moto_url, cli, config, model_archive, capsys
):
    endpoint = NAMES.default_endpoint
    assert _deploy(cli, model_archive) == 0
    sm = aws_moto.client("sagemaker", REGION)
    before = aws_moto.sagemaker_leftovers(REGION)
    old_config = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    capsys.readouterr()
    time.sleep(1)  # a new second: new resource names
    aws_moto.ROLL_BACK_UPDATES.append(True)
    try:
        code = _deploy(cli, model_archive, "--update")
    finally:
        aws_moto.ROLL_BACK_UPDATES.clear()
    captured = capsys.readouterr()
    # It said "InService (updated)" and kept both configs and models.
    assert code == 2, captured.out + captured.err
    assert "(updated)" not in captured.out
    rolled_back = f"the update of endpoint {endpoint} was rolled back: it still runs endpoint config"
    assert f"{rolled_back} {old_config}" in captured.err
    assert "did not pass the ping health check" in captured.err
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"] == old_config
    assert aws_moto.sagemaker_leftovers(REGION) == before, "the old ones kept, the new ones removed"


def test_delete_all_finds_the_project_by_tags(moto_url, cli, config, model_archive, capsys):
    # Any endpoint name: tags, not names, say whose a resource is.
    assert _deploy(cli, model_archive, "--endpoint-name", "renamed-by-the-team") == 0
    s3 = aws_moto.client("s3", REGION)
    s3.create_bucket(Bucket="inputs", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="inputs", Key="texts.jsonl", Body=b'{"inputs": "good"}\n')
    args = ["--model-data", str(model_archive), "--input", "s3://inputs/texts.jsonl", "--no-wait"]
    assert cli.main(["sagemaker", "batch-transform", *args, "--role", aws_moto.FAKE_ROLE]) == 0
    sm = aws_moto.client("sagemaker", REGION)
    [job] = sm.list_transform_jobs()["TransformJobSummaries"]
    assert _tags(job["TransformJobArn"]) == {"project": config.project.slug}
    # Another team's model with a name like ours is not this project's.
    foreign = f"{NAMES.default_endpoint}-foreign"
    sm.create_model(
        ModelName=foreign,
        PrimaryContainer={"Image": INFERENCE_IMAGE},
        ExecutionRoleArn=aws_moto.FAKE_ROLE,
        Tags=[{"Key": "project", "Value": "someone-else"}],
    )
    capsys.readouterr()
    assert cli.main(["sagemaker", "list"]) == 0
    listed = capsys.readouterr().out
    assert "endpoint         renamed-by-the-team  InService" in listed
    assert f"transform job    {job['TransformJobName']}" in listed
    assert foreign not in listed

    assert cli.main(["sagemaker", "delete", "--all"]) == 0
    capsys.readouterr()
    assert cli.main(["sagemaker", "list"]) == 0
    listed = capsys.readouterr().out
    assert "no endpoints, endpoint configs or models of this project" in listed
    assert aws_moto.sagemaker_leftovers(REGION) == {
        "endpoints": [],
        "endpoint_configs": [],
        "models": [foreign],
    }


def test_failed_batch_transform_removes_its_model(moto_url, cli, model_archive, capsys):
    aws_moto.FAIL_TRANSFORM_JOBS.append(True)
    s3 = aws_moto.client("s3", REGION)
    s3.create_bucket(Bucket="inputs", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="inputs", Key="texts.jsonl", Body=b'{"inputs": "good"}\n')
    code = cli.main(
        [
            "sagemaker",
            "batch-transform",
            "--model-data",
            str(model_archive),
            "--input",
            "s3://inputs/texts.jsonl",
            "--role",
            aws_moto.FAKE_ROLE,
        ]
    )
    assert code == 2
    assert "model container failed" in capsys.readouterr().err
    assert aws_moto.sagemaker_leftovers(REGION)["models"] == []
    assert "DeleteModel" in aws_moto.CALLS


def test_invoke_chunks_large_inputs_and_keeps_order(moto_url, cli, config, model_archive, tmp_path, capsys):
    from nsmc_sentiment_classifier.aws import endpoints

    assert _deploy(cli, model_archive) == 0
    texts = [f"리뷰 {i}" for i in range(endpoints.INVOKE_MAX_TEXTS + 44)]
    path = tmp_path / "many.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    sizes = [endpoints.INVOKE_MAX_TEXTS, 44]
    labels = config.data.label_names
    answers = []
    start = 0
    for size in sizes:
        answers.append([{"label": labels[(start + i) % 2], "score": (start + i) / 1000} for i in range(size)])
        start += size
    aws_moto.queue_endpoint_results(moto_url, REGION, answers)
    capsys.readouterr()
    assert cli.main(["sagemaker", "invoke", "--file", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [len(body["inputs"]) for body in aws_moto.INVOKED] == sizes
    assert [text for body in aws_moto.INVOKED for text in body["inputs"]] == texts
    assert lines == [f"{labels[i % 2]}\t{i / 1000:.4f}\t{text}" for i, text in enumerate(texts)]

    # A request stays under the payload limit whatever the count.
    big = ["가" * 400_000] * 10
    chunks = list(endpoints.request_chunks(big))
    assert sum(map(len, chunks)) == 10 and len(chunks) > 1
    for chunk in chunks:
        assert len(json.dumps({"inputs": chunk}, ensure_ascii=False).encode()) <= endpoints.INVOKE_MAX_BYTES


def test_register_approve_and_deploy_a_registered_version(
    moto_url, cli, config, model_archive, tmp_path, capsys
):
    metrics = tmp_path / "metrics.json"
    metrics.write_text(json.dumps({"accuracy": 0.875, "macro_f1": 0.87, "notes": ["x"]}), encoding="utf-8")
    args = ["sagemaker", "register", "--model-data", str(model_archive), "--metrics", str(metrics)]
    code = cli.main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    arn = captured.out.split()[2].rstrip(":")
    assert f"model package {arn}: PendingManualApproval" in captured.out
    sm = aws_moto.client("sagemaker", REGION)
    package = sm.describe_model_package(ModelPackageName=arn)
    assert package["ModelPackageGroupName"] == NAMES.model_package_group
    assert package["InferenceSpecification"]["Containers"][0]["Image"] == INFERENCE_IMAGE
    assert package["CustomerMetadataProperties"]["metric.accuracy"] == "0.875"

    # Not approved yet: nothing to deploy, and nothing is created.
    deploy = ["sagemaker", "deploy", "--model-package", "latest-approved", "--role", aws_moto.FAKE_ROLE]
    assert cli.main(deploy) == 2
    assert "no Approved version" in capsys.readouterr().err
    assert aws_moto.sagemaker_leftovers(REGION)["models"] == []

    sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved")
    code = cli.main(deploy)
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    endpoint = sm.describe_endpoint(EndpointName=NAMES.default_endpoint)
    [variant] = sm.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])[
        "ProductionVariants"
    ]
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert model["PrimaryContainer"]["ModelPackageName"] == arn
    assert _tags(model["ModelArn"]) == {"project": config.project.slug}


def test_images_marks_versions_too_old_for_the_project(cli, capsys):
    assert cli.main(["sagemaker", "images", "--scope", "training"]) == 0
    lines = capsys.readouterr().out.splitlines()
    old = [line for line in lines if line.startswith("4.28.1 ")]
    assert old and all("cannot run this project: transformers 4.28.1 < 4.51" in line for line in old)
    assert any(line.startswith("5.3.0 ") and "cannot run" not in line for line in lines)


def test_invoke_keeps_every_label_a_multi_label_endpoint_decides(moto_url, cli, config, model_archive):
    from nsmc_sentiment_classifier.aws import endpoints
    from nsmc_sentiment_classifier.aws.session import (
        Aws,
        resolve_settings,
    )

    assert _deploy(cli, model_archive) == 0
    # A multi-label model answers each text with the labels it decides: several, one or none.
    decided = [
        [{"label": "positive", "score": 0.9}, {"label": "negative", "score": 0.6}],
        [],
        [{"label": "negative", "score": 0.7}],
    ]
    aws_moto.queue_endpoint_results(moto_url, REGION, [decided])
    aws = Aws(resolve_settings(config, region=REGION, role=aws_moto.FAKE_ROLE))
    name = endpoints.default_endpoint_name(config)
    assert endpoints.invoke(aws, name, ["a", "b", "c"], multi_label=True) == decided


def test_invoke_sends_a_text_pair(moto_url, cli, config, model_archive, capsys):
    assert _deploy(cli, model_archive) == 0
    labels = config.data.label_names
    aws_moto.queue_endpoint_results(moto_url, REGION, [[{"label": labels[1], "score": 0.75}]])
    capsys.readouterr()
    assert cli.main(["sagemaker", "invoke", "정말 재밌어요", "--text-pair", "배우 연기도 좋았다"]) == 0
    assert aws_moto.INVOKED[-1] == {"inputs": [{"text": "정말 재밌어요", "text_pair": "배우 연기도 좋았다"}]}
    assert capsys.readouterr().out.splitlines() == [f"{labels[1]}\t0.7500\t정말 재밌어요\t배우 연기도 좋았다"]
    assert cli.main(["sagemaker", "invoke", "a", "b", "--text-pair", "c"]) == 2
    assert "--text-pair goes with exactly one text argument" in capsys.readouterr().err


def test_a_pair_projects_data_file_is_sent_as_pairs(config, tmp_path):
    import dataclasses

    from nsmc_sentiment_classifier.aws import endpoints
    from nsmc_sentiment_classifier.errors import DataFormatError

    first, second = config.data.text_columns if config.data.pair_column else ("review_a", "review_b")
    data = dataclasses.replace(config.data, task="text_pair", text_column=first, text_pair_column=second)
    pair_config = dataclasses.replace(config, data=data)
    table = tmp_path / "pairs.csv"
    table.write_text(f"id,{first},{second}\n1,재밌다,최고\n2,별로,지루\n", "utf-8")
    expected = [{"text": "재밌다", "text_pair": "최고"}, {"text": "별로", "text_pair": "지루"}]
    assert endpoints.read_texts([], str(table), pair_config) == expected
    out = endpoints.jsonl_for_transform(pair_config, table, tmp_path / "records.jsonl")
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert records == [{"inputs": item} for item in expected]
    # The container's CSV columns work too; a file with neither is named with what it has.
    table.write_text("inputs,text_pair\n재밌다,최고\n", "utf-8")
    assert endpoints.read_texts([], str(table), pair_config) == expected[:1]
    table.write_text("other\n재밌다\n", "utf-8")
    with pytest.raises(
        DataFormatError, match=f"pairs.csv: no '{first}' and '{second}' \\(or 'inputs'\\) columns; has other"
    ):
        endpoints.read_texts([], str(table), pair_config)


def _error_line(err: str) -> str:
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    return line


def _scaling_state() -> list[tuple[str, int, int, float]]:
    """(resource, min, max, target value of each policy) of every SageMaker scaling target."""
    scaling = aws_moto.client("application-autoscaling", REGION)
    policies = scaling.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    return [
        (
            target["ResourceId"],
            target["MinCapacity"],
            target["MaxCapacity"],
            *(
                p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"]
                for p in policies
                if p["ResourceId"] == target["ResourceId"]
            ),
        )
        for target in scaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    ]


def _serving(sm, endpoint: str) -> tuple[str, dict]:
    """The endpoint's config name and its production variant."""
    config_name = sm.describe_endpoint(EndpointName=endpoint)["EndpointConfigName"]
    [variant] = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    return config_name, variant


def _deployed_once(cli, model_archive, capsys):
    """The default endpoint, deployed; its config and variant, and a new second for new names."""
    assert _deploy(cli, model_archive) == 0
    sm = aws_moto.client("sagemaker", REGION)
    old_config, old_variant = _serving(sm, NAMES.default_endpoint)
    capsys.readouterr()
    time.sleep(1)  # a new second: new resource names
    return sm, old_config, old_variant


def test_autoscaling_failure_after_the_switch_keeps_the_config_the_endpoint_runs(
    moto_url, cli, model_archive, capsys
):
    endpoint = NAMES.default_endpoint
    sm, old_config, old_variant = _deployed_once(cli, model_archive, capsys)
    aws_moto.FAIL_SCALING_POLICIES.append(True)
    code = _deploy(cli, model_archive, "--update", "--autoscale", "1:3")
    err = capsys.readouterr().err
    assert code == 2
    new_config, variant = _serving(sm, endpoint)
    assert new_config != old_config
    line = _error_line(err)
    assert f"endpoint {endpoint} is InService on endpoint config {new_config} WITHOUT autoscaling" in line
    assert "not authorized to create the service-linked role" in line
    # What puts it back, exactly: the AWS CLI's own commands, not a whole new deployment.
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    assert (
        f"`aws application-autoscaling register-scalable-target --service-namespace sagemaker "
        f"--resource-id {resource} --scalable-dimension sagemaker:variant:DesiredInstanceCount "
        "--min-capacity 1 --max-capacity 3`"
    ) in line
    assert "put-scaling-policy" in line and "--policy-type TargetTrackingScaling" in line
    assert f"sagemaker delete --endpoint-name {endpoint}" in line
    # What the endpoint runs stays; the old config and model go, as after any update.
    leftovers = aws_moto.sagemaker_leftovers(REGION)
    assert leftovers["endpoint_configs"] == [new_config]
    assert leftovers["models"] == [variant["ModelName"]] != [old_variant["ModelName"]]
    # No target without its policy passes for autoscaling.
    assert _scaling_state() == []


def test_autoscaling_failure_on_a_new_endpoint_keeps_the_endpoint(moto_url, cli, model_archive, capsys):
    endpoint = NAMES.default_endpoint
    aws_moto.FAIL_SCALING_POLICIES.append(True)
    code = _deploy(cli, model_archive, "--autoscale", "1:3")
    err = capsys.readouterr().err
    assert code == 2
    sm = aws_moto.client("sagemaker", REGION)
    assert sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService"
    config_name, variant = _serving(sm, endpoint)
    assert aws_moto.sagemaker_leftovers(REGION) == {
        "endpoints": [endpoint],
        "endpoint_configs": [config_name],
        "models": [variant["ModelName"]],
    }
    assert f"endpoint {endpoint} is InService on endpoint config {config_name} WITHOUT autoscaling" in (
        _error_line(err)
    )
    assert _scaling_state() == []


def test_a_failed_or_rolled_back_update_restores_the_scaling_settings(
    moto_url, cli, config, model_archive, capsys, caplog
):
    endpoint = NAMES.default_endpoint
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    assert _deploy(cli, model_archive, "--autoscale", "1:3", "--target-invocations", "50") == 0
    assert _scaling_state() == [(resource, 1, 3, 50.0)]
    before = aws_moto.sagemaker_leftovers(REGION)
    capsys.readouterr()
    # Another instance type: the target is deregistered for the update, so it must come back.
    # The same type: the target stays (and scales the old fleet) throughout.
    for switch, message, other_type in (
        (aws_moto.ROLL_BACK_UPDATES, "was rolled back", True),
        (aws_moto.FAIL_UPDATES, "Cannot update in-progress endpoint", True),
        (aws_moto.ROLL_BACK_UPDATES, "was rolled back", False),
    ):
        time.sleep(1)  # a new second: new resource names
        caplog.clear()
        switch.append(True)
        try:
            code = _deploy(
                cli, model_archive, "--update", *(["--instance-type", "ml.m5.xlarge"] if other_type else [])
            )
        finally:
            switch.clear()
        err = capsys.readouterr().err
        assert code == 2
        assert message in _error_line(err)
        assert _scaling_state() == [(resource, 1, 3, 50.0)], message
        if switch is aws_moto.ROLL_BACK_UPDATES:
            assert ("its autoscaling (1-3 instances) is restored" in _error_line(err)) is other_type
        if other_type:
            # Logged before the switch, for a process stopped meanwhile.
            assert "put it back with: `aws application-autoscaling register-scalable-target" in caplog.text
        assert aws_moto.sagemaker_leftovers(REGION) == before


def test_update_keeps_the_fleet_size_variant_properties_and_scaling(
    moto_url, cli, config, model_archive, capsys
):
    endpoint = NAMES.default_endpoint
    resource = f"endpoint/{endpoint}/variant/AllTraffic"
    instance_type = config.sagemaker.inference_instance_type
    args = ("--autoscale", "1:4", "--target-invocations", "50", "--instance-count", "2")
    assert _deploy(cli, model_archive, *args) == 0
    sm = aws_moto.client("sagemaker", REGION)
    _, deployed = _serving(sm, endpoint)
    # Tuned by hand since (as a team would in the console): 3 instances, a bigger volume...
    tuned = {
        "VolumeSizeInGB": 64,
        "ModelDataDownloadTimeoutInSeconds": 900,
        "ContainerStartupHealthCheckTimeoutInSeconds": 600,
        "RoutingConfig": {"RoutingStrategy": "RANDOM"},
    }
    sm.create_endpoint_config(
        EndpointConfigName=f"{endpoint}-tuned",
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": deployed["ModelName"],
                "InstanceType": instance_type,
                "InitialInstanceCount": 3,
                **tuned,
            }
        ],
    )
    sm.update_endpoint(EndpointName=endpoint, EndpointConfigName=f"{endpoint}-tuned")
    capsys.readouterr()
    time.sleep(1)  # a new second: new resource names

    code = _deploy(cli, model_archive, "--update")
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    config_name, variant = _serving(sm, endpoint)
    assert variant["InitialInstanceCount"] == 3
    assert {key: variant.get(key) for key in tuned} == tuned
    assert _scaling_state() == [(resource, 1, 4, 50.0)]
    assert f"autoscaling: {resource} (1-4 instances, kept)" in captured.out
    # The config it ran (hand-made) is unused now and goes, as after any update.
    configs = aws_moto.sagemaker_leftovers(REGION)["endpoint_configs"]
    assert config_name in configs and f"{endpoint}-tuned" not in configs

    # On another instance type, only the properties that hold for any type are kept; an
    # explicit count wins.
    time.sleep(1)
    code = _deploy(cli, model_archive, "--update", "--instance-type", "ml.m5.xlarge", "--instance-count", "2")
    assert code == 0, capsys.readouterr()
    _, variant = _serving(sm, endpoint)
    assert variant["InitialInstanceCount"] == 2 and "VolumeSizeInGB" not in variant
    assert variant["ModelDataDownloadTimeoutInSeconds"] == 900
    # Deregistered for the change of type, registered again on the new fleet.
    assert _scaling_state() == [(resource, 1, 4, 50.0)]


def test_update_traffic_shifting_and_rollback_alarms(moto_url, cli, config, model_archive, capsys):
    endpoint = NAMES.default_endpoint
    serverless = f"{NAMES.prefix}-serverless"
    assert _deploy(cli, model_archive) == 0
    assert _deploy(cli, model_archive, "--serverless-memory", "2048", "--endpoint-name", serverless) == 0
    before = aws_moto.sagemaker_leftovers(REGION)
    capsys.readouterr()
    refused = [
        (["--traffic", "canary:10"], "--traffic: these say how --update replaces the fleet"),
        (["--update", "--traffic", "halfway"], "--traffic expects all-at-once, canary:PERCENT or linear"),
        (["--update", "--traffic", "linear:100"], "a linear step is 10 to 50 percent of the fleet"),
        (["--update", "--traffic", "linear:5"], "a linear step is 10 to 50 percent of the fleet"),
        (["--update", "--traffic", "canary:60"], "a canary step is 1 to 50 percent of the fleet"),
        (["--update", "--traffic-wait", "4000"], "--traffic-wait 4000: SageMaker takes 0 to 3600"),
        (["--update", "--max-update-time", "60"], "--max-update-time 60: SageMaker takes 600 to 28800"),
        (
            ["--update", "--traffic", "linear:25", "--traffic-wait", "600", "--max-update-time", "1800"],
            "--max-update-time 1800 must exceed the update's waits (2400 s",
        ),
        (
            ["--update", *[f"--rollback-alarm=a{i}" for i in range(11)]],
            "SageMaker takes at most 10 alarms",
        ),
        (
            ["--update", "--serverless-memory", "2048", "--traffic", "canary:10"],
            "serverless endpoints do not support blue/green traffic shifting or rollback alarms; "
            "drop --traffic",
        ),
        (
            ["--update", "--endpoint-name", serverless, "--rollback-alarm", "errors"],
            f"endpoint {serverless} is serverless",
        ),
        (["--update", "--rollback-alarm", "no-such-alarm"], "--rollback-alarm no-such-alarm: no such"),
    ]
    for args, message in refused:
        assert _deploy(cli, model_archive, *args) == 2, args
        assert message in _error_line(capsys.readouterr().err), args
    assert aws_moto.sagemaker_leftovers(REGION) == before
    assert aws_moto.UPDATE_REQUESTS == []

    aws_moto.client("cloudwatch", REGION).put_metric_alarm(
        AlarmName="endpoint-5xx",
        Namespace="AWS/SageMaker",
        MetricName="Invocation5XXErrors",
        Dimensions=[
            {"Name": "EndpointName", "Value": endpoint},
            {"Name": "VariantName", "Value": "AllTraffic"},
        ],
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1.0,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )
    time.sleep(1)  # a new second: new resource names
    args = ["--traffic", "canary:10", "--rollback-alarm", "endpoint-5xx", "--max-update-time", "3600"]
    code = _deploy(cli, model_archive, "--update", *args, "--termination-wait", "120")
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    assert aws_moto.UPDATE_REQUESTS[-1]["DeploymentConfig"] == {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "WaitIntervalInSeconds": 300,
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
            },
            "TerminationWaitInSeconds": 120,
            "MaximumExecutionTimeoutInSeconds": 3600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "endpoint-5xx"}]},
    }
    assert "rollout: canary 10%, 300 s bake, rollback on endpoint-5xx" in captured.out

    # Without options: none sent, so SageMaker's own default applies (and endpoints that take
    # no deployment guardrails are not refused for a config nobody asked for).
    time.sleep(1)
    assert _deploy(cli, model_archive, "--update") == 0
    assert "DeploymentConfig" not in aws_moto.UPDATE_REQUESTS[-1]
    # A serverless endpoint's update carries none.
    time.sleep(1)
    assert (
        _deploy(cli, model_archive, "--update", "--endpoint-name", serverless, "--serverless-memory", "2048")
        == 0
    )
    assert "DeploymentConfig" not in aws_moto.UPDATE_REQUESTS[-1]


def _approved_package(cli, model_archive, capsys) -> str:
    code = cli.main(["sagemaker", "register", "--model-data", str(model_archive)])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    arn = captured.out.split()[2].rstrip(":")
    aws_moto.client("sagemaker", REGION).update_model_package(
        ModelPackageArn=arn, ModelApprovalStatus="Approved"
    )
    return arn


def test_cpu_targets_of_a_registered_version_get_its_cpu_image(moto_url, cli, model_archive, capsys):
    arn = _approved_package(cli, model_archive, capsys)
    sm = aws_moto.client("sagemaker", REGION)
    registered = sm.describe_model_package(ModelPackageName=arn)["InferenceSpecification"]["Containers"][0]
    assert registered["Image"] == INFERENCE_IMAGE  # the GPU build
    cpu_image = "huggingface-pytorch-inference:2.6.0-transformers4.51.3-cpu-py312"
    source = ["--model-package", "latest-approved", "--role", aws_moto.FAKE_ROLE]

    serverless = f"{NAMES.prefix}-serverless"
    args = ["sagemaker", "deploy", *source, "--serverless-memory", "2048", "--endpoint-name", serverless]
    code = cli.main(args)
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    _, variant = _serving(sm, serverless)
    model = sm.describe_model(ModelName=variant["ModelName"])
    assert cpu_image in model["PrimaryContainer"]["Image"]
    assert model["PrimaryContainer"]["ModelDataUrl"] == registered["ModelDataUrl"]
    assert _tags(model["ModelArn"])["model-package"] == arn

    s3 = aws_moto.client("s3", REGION)
    s3.create_bucket(Bucket="inputs", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_object(Bucket="inputs", Key="texts.jsonl", Body=b'{"inputs": "good"}\n')
    batch = ["sagemaker", "batch-transform", *source, "--input", "s3://inputs/texts.jsonl"]
    code = cli.main([*batch, "--instance-type", "ml.c5.xlarge", "--no-wait"])
    captured = capsys.readouterr()
    assert code == 0, captured.out + captured.err
    [job] = sm.list_transform_jobs()["TransformJobSummaries"]
    model_name = sm.describe_transform_job(TransformJobName=job["TransformJobName"])["ModelName"]
    container = sm.describe_model(ModelName=model_name)["PrimaryContainer"]
    assert cpu_image in container["Image"] and container["ModelDataUrl"] == registered["ModelDataUrl"]


def test_a_failure_while_an_update_runs_keeps_the_config_it_is_moving_to(
    moto_url, cli, model_archive, capsys
):
    """The wait fails (here: credentials expire) while SageMaker is still updating: the new
    config and model are what the endpoint is moving to, so the clean-up must leave them."""
    endpoint = NAMES.default_endpoint
    sm, old_config, old_variant = _deployed_once(cli, model_archive, capsys)
    aws_moto.HOLD_UPDATES.append(True)
    code = _deploy(cli, model_archive, "--update")
    err = capsys.readouterr().err
    assert code != 0 and "expired" in err
    pending = sm.describe_endpoint(EndpointName=endpoint)["PendingDeploymentSummary"]["EndpointConfigName"]
    [new_variant] = sm.describe_endpoint_config(EndpointConfigName=pending)["ProductionVariants"]
    leftovers = aws_moto.sagemaker_leftovers(REGION)
    assert sorted(leftovers["endpoint_configs"]) == sorted([old_config, pending])
    assert sorted(leftovers["models"]) == sorted([old_variant["ModelName"], new_variant["ModelName"]])
