"""``narrate deploy`` and ``narrate doctor`` against the embedded AWS: the quota checked before anything
is created, the role created with its trust and policy, everything tagged; a dry run that calls
nothing; a doctor that only reads, and says what is wrong."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import pytest

from narrate.aws.clients import AwsClients
from narrate.aws.local import LocalAws
from narrate.cli.main import main
from narrate.endpoints.deploy import CODE_HASH_KEY, DeployOptions, deploy
from narrate.endpoints.doctor import Doctor
from narrate.errors import ConfigError
from narrate.settings import get_settings
from tests.conftest import EXAMPLES
from tests.narrate.aws.boto_calls import each_boto3_call

pytestmark = pytest.mark.usefixtures("embedded_aws", "own_role")


@pytest.fixture
def own_role(monkeypatch: pytest.MonkeyPatch) -> str:
    """An execution role of this test's own (IAM is account-wide in the session's embedded AWS)."""
    name = get_settings().endpoint_name
    monkeypatch.setenv("NARRATE_ROLE_ARN", f"arn:aws:iam::123456789012:role/{name}")
    get_settings.cache_clear()
    return name


@pytest.fixture
def package(tmp_path: Path) -> Path:
    path = tmp_path / "model.tar.gz"
    path.write_bytes(b"not a real package: the embedded AWS never unpacks it")
    return path


@contextmanager
def operations() -> Iterator[list[str]]:
    names: list[str] = []
    with each_boto3_call(lambda service, operation: names.append(operation)):
        yield names


def tags_of(arn: str) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in boto3.client("sagemaker").list_tags(ResourceArn=arn)["Tags"]}


def test_a_short_quota_stops_the_deploy_before_anything_is_created(
    embedded_aws: LocalAws, package: Path
) -> None:
    settings = get_settings()
    assert embedded_aws.emulator is not None
    embedded_aws.emulator.quotas.set(settings.instance_type, 0)  # a new account
    try:
        with operations() as calls, pytest.raises(ConfigError) as refused:
            deploy(settings, AwsClients(settings.region), DeployOptions(create_role=True), lambda: package)
    finally:
        embedded_aws.emulator.quotas.set(settings.instance_type, 4)
    message = str(refused.value)
    assert (
        "quota 'ml.g5.xlarge for endpoint usage' in us-east-1 is 0 (needed: 1): nothing was created"
        in message
    )
    assert "request-service-quota-increase" in message and "--quota-code L-LOCAL" in message
    assert calls == ["ListServiceQuotas"]
    assert boto3.client("sagemaker").list_endpoints()["Endpoints"] == [] or all(
        e["EndpointName"] != settings.endpoint_name
        for e in boto3.client("sagemaker").list_endpoints()["Endpoints"]
    )


def test_a_deploy_creates_the_role_and_tags_everything(
    package: Path, monkeypatch: pytest.MonkeyPatch, own_role: str
) -> None:
    monkeypatch.setenv("NARRATE_TAGS", "project=narrate,team=docs")  # the role stays this test's own
    get_settings.cache_clear()
    settings = get_settings()
    with pytest.raises(
        ConfigError, match=f"role {own_role} does not exist; run `narrate deploy --create-role`"
    ):
        deploy(settings, AwsClients(settings.region), DeployOptions(), lambda: package)
    result = deploy(settings, AwsClients(settings.region), DeployOptions(create_role=True), lambda: package)
    assert result["role"].startswith("created") and result["status"] == "InService"
    iam = boto3.client("iam")
    role = iam.get_role(RoleName=own_role)["Role"]
    trust = role["AssumeRolePolicyDocument"]
    assert trust["Statement"][0]["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert {t["Key"]: t["Value"] for t in role["Tags"]}["team"] == "docs"
    policy = iam.get_role_policy(RoleName=own_role, PolicyName="narrate-endpoint-execution")
    assert "ecr:BatchGetImage" in json.dumps(policy["PolicyDocument"])
    sagemaker = boto3.client("sagemaker")
    endpoint = sagemaker.describe_endpoint(EndpointName=settings.endpoint_name)
    config = sagemaker.describe_endpoint_config(EndpointConfigName=endpoint["EndpointConfigName"])
    model = sagemaker.describe_model(ModelName=config["ProductionVariants"][0]["ModelName"])
    wanted = {"project": "narrate", "team": "docs", "narrate:endpoint": settings.endpoint_name}
    for arn in (endpoint["EndpointArn"], config["EndpointConfigArn"], model["ModelArn"]):
        assert tags_of(arn) == wanted, arn
    assert model["PrimaryContainer"]["Image"].startswith("763104351884.dkr.ecr.us-east-1.amazonaws.com/")
    bucket_tags = boto3.client("s3").get_bucket_tagging(Bucket=settings.bucket)["TagSet"]
    assert {t["Key"]: t["Value"] for t in bucket_tags} == wanted
    head = boto3.client("s3").head_object(Bucket=settings.bucket, Key="narrate/model/model.tar.gz")
    assert len(head["Metadata"][CODE_HASH_KEY]) == 64
    again = deploy(settings, AwsClients(settings.region), DeployOptions(), lambda: package)
    assert again["created"] == [] and "trusts SageMaker" in again["role"]


def test_the_doctor_reads_only_and_says_what_to_do(package: Path) -> None:
    settings = get_settings()
    with operations() as calls:
        before = {
            c.name: c for c in Doctor(settings, AwsClients(settings.region), EXAMPLES / "demo.yaml").checks()
        }
    assert all(name.startswith(("Get", "List", "Describe", "Head")) for name in calls), calls
    assert before["credentials"].ok and before["quota"].ok and before["image"].ok
    assert not before["role"].ok and before["role"].fix == "narrate deploy --create-role"
    assert not before["endpoint"].ok and before["endpoint"].fix == "narrate deploy"
    assert not before["voices"].ok and "aiden-calm" in before["voices"].detail  # needs the Qwen engine

    deploy(settings, AwsClients(settings.region), DeployOptions(create_role=True), lambda: package)
    after = {c.name: c for c in Doctor(settings, AwsClients(settings.region), None).checks()}
    assert all(check.ok for check in after.values()), [c for c in after.values() if not c.ok]


def test_the_doctor_command_exits_non_zero_on_a_problem(
    capsys: pytest.CaptureFixture[str], own_role: str
) -> None:
    assert main(["doctor", str(EXAMPLES / "demo.yaml")]) == 1
    err = capsys.readouterr().err
    assert f"FAIL role: {own_role} does not exist -> narrate deploy --create-role" in err
    assert "OK   credentials" in err and "to fix: role" in err


def test_a_dry_run_calls_nothing_and_shows_the_region_s_image_and_the_tags(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NARRATE_REGION", "eu-west-1")
    get_settings.cache_clear()
    with operations() as calls:
        assert main(["deploy", "--dry-run", "--create-role"]) == 0
    assert calls == []  # not a single AWS call, embedded or real
    out = capsys.readouterr().out
    assert "nothing was called; in eu-west-1" in out
    assert "sagemaker CreateModel" in out and "Image=763104351884.dkr.ecr.eu-west-1.amazonaws.com/" in out
    assert "iam CreateRole RoleName=narrate-test-" in out and "service-quotas ListServiceQuotas" in out
    assert "Tags=project=narrate,narrate:endpoint=" in out
    summary = json.loads(out.strip().splitlines()[-1])
    assert ".dkr.ecr.eu-west-1." in summary["image"]
    monkeypatch.setenv("NARRATE_REGION", "eu-central-2")
    get_settings.cache_clear()
    assert main(["deploy", "--dry-run"]) == 0
    assert "Image=380420809688.dkr.ecr.eu-central-2.amazonaws.com/" in capsys.readouterr().out


@pytest.mark.usefixtures("prefect_server")
def test_a_voice_the_container_cannot_speak_is_refused_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil
    import time

    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    with operations() as calls:
        started = time.monotonic()
        assert main(["render", str(script), "--voice", "aiden-calm", "--out", str(tmp_path / "out")]) == 2
        took = time.monotonic() - started
    err = capsys.readouterr().err
    assert "voice aiden-calm (qwen-speaker) needs the custom_voice mode" in err
    assert "NARRATE_ENGINES" in err and "NARRATE_QWEN_CUSTOM_VOICE_MODEL" in err
    assert calls == [] and took < 1 and not (tmp_path / "out").exists()
