"""The IAM policies narrate prints, as AWS would judge them: parliament (AWS's IAM linter) accepts every
document, and a deploy then a render, run against the embedded AWS with every call recorded, make only
calls their own policy allows; the render policy allows almost nothing it does not need."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from parliament import analyze_policy_string, enhance_finding

from narrate.aws.clients import AwsClients
from narrate.aws.iam import DOCUMENTS, UNSCOPED_ACTIONS, endpoint_role_policy, policies
from narrate.cli.main import main
from narrate.endpoints.deploy import DeployOptions, deploy
from narrate.settings import Settings, get_settings
from tests.conftest import EXAMPLES
from tests.narrate.aws.boto_calls import each_boto3_call

SERVICE = {
    "sagemaker": "sagemaker", "sagemaker-runtime": "sagemaker", "s3": "s3", "iam": "iam",
    "application-autoscaling": "application-autoscaling", "cloudwatch": "cloudwatch",
    "service-quotas": "servicequotas", "polly": "polly",
}  # fmt: skip
# S3 operations whose IAM action has another name (and what needs no permission at all).
RENAMED = {
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
}
# What the deploy policy allows that a first deploy never calls: evaluated on another call (PassRole
# on CreateModel, AddTags/TagResource on tagged creates), or needed for a later one (a rollout, a
# replaced endpoint, a deleted alarm, the service-linked role AWS creates on the first registration).
DEPLOY_BESIDES_CALLS = {
    "iam:PassRole", "iam:CreateServiceLinkedRole", "iam:GetRolePolicy", "iam:TagRole", "sagemaker:AddTags",
    "cloudwatch:TagResource", "application-autoscaling:TagResource", "sagemaker:UpdateEndpoint",
    "sagemaker:DeleteEndpoint", "sagemaker:UpdateEndpointWeightsAndCapacities",
    "sagemaker:InvokeEndpointAsync",
    "application-autoscaling:DeregisterScalableTarget", "application-autoscaling:PutScheduledAction",
    "application-autoscaling:DeleteScheduledAction", "cloudwatch:DeleteAlarms", "cloudwatch:DescribeAlarms",
    "s3:DeleteObject", "s3:GetObject", "s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration",
    "s3:GetBucketPolicy", "s3:PutBucketPolicy",
}  # fmt: skip
RENDER_BESIDES_CALLS = {"polly:SynthesizeSpeech"}  # the render below speaks a dev voice


def settings(**overrides: Any) -> Settings:
    base = {"role_arn": "arn:aws:iam::123456789012:role/narrate-endpoint", "bucket": "acme-narrate",
            "endpoint_name": "narrate-tts", "region": "eu-west-1"}  # fmt: skip
    return Settings(**(base | overrides))


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    assert policy["Version"] == "2012-10-17"
    return policy["Statement"]


def actions(policy: dict[str, Any]) -> set[str]:
    return {action for statement in statements(policy) for action in statement["Action"]}


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "eu-central-2", "ap-east-1"])
@pytest.mark.parametrize("kms", [None, "arn:aws:kms:eu-west-1:123456789012:key/k"])
def test_every_document_passes_the_iam_linter(region: str, kms: str | None) -> None:
    """No finding above LOW. The LOW ones are the Resource "*" of the Application Auto Scaling actions,
    which AWS scopes only to a scalable target's ARN whose id it makes up at registration."""
    for name, document in policies(settings(region=region, kms_key_id=kms), "123456789012").items():
        findings = [enhance_finding(f) for f in analyze_policy_string(json.dumps(document)).findings]
        serious = [(f.issue, f.detail) for f in findings if f.severity not in {"LOW", "INFO"}]
        assert serious == [], (name, serious)
        for finding in findings:
            assert finding.issue == "RESOURCE_STAR", (name, finding.issue, finding.detail)
            assert all(action.startswith("application-autoscaling:") for action in finding.detail), (
                finding.detail
            )


def test_the_linter_catches_what_it_should(tmp_path: Path) -> None:
    """The check can fail: the old policy's CreateEndpoint on the endpoint alone is a RESOURCE_MISMATCH."""
    old = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["sagemaker:CreateEndpoint"],
           "Resource": ["arn:aws:sagemaker:eu-west-1:123456789012:endpoint/narrate-tts"]}]}  # fmt: skip
    issues = {enhance_finding(f).issue for f in analyze_policy_string(json.dumps(old)).findings}
    assert "RESOURCE_MISMATCH" in issues


def test_no_wildcard_beyond_what_aws_requires() -> None:
    for name, document in policies(
        settings(kms_key_id="arn:aws:kms:eu-west-1:1:key/k"), "123456789012"
    ).items():
        for statement in statements(document):
            assert statement["Effect"] == "Allow"
            assert all("*" not in action for action in statement["Action"]), (name, statement)
            if "*" in statement["Resource"]:
                assert statement["Resource"] == ["*"] and set(statement["Action"]) <= UNSCOPED_ACTIONS, (
                    statement
                )


def test_the_render_policy_sets_up_nothing() -> None:
    render = actions(policies(settings(), "123456789012")["render"])
    forbidden = {"s3:PutBucketPolicy", "sagemaker:CreateModel", "iam:PassRole", "sagemaker:CreateEndpoint",
                 "sagemaker:UpdateEndpoint", "application-autoscaling:PutScalingPolicy"}  # fmt: skip
    assert forbidden & render == set()


def test_the_image_and_its_registry_follow_the_region() -> None:
    for region, account in (("eu-west-1", "763104351884"), ("eu-central-2", "380420809688")):
        text = json.dumps(endpoint_role_policy(settings(region=region), "123456789012"))
        assert f"arn:aws:ecr:{region}:{account}:repository/huggingface-pytorch-inference" in text


@contextmanager
def recorded_calls() -> Iterator[set[str]]:
    """Every AWS call boto3 makes meanwhile, as the IAM action it needs."""
    calls: set[str] = set()

    def record(service_name: str, operation: str) -> None:
        service = SERVICE.get(service_name)
        if service is not None:
            action = f"{service}:{operation}"
            calls.add(RENAMED.get(action, action))

    with each_boto3_call(record):
        yield calls


@pytest.mark.usefixtures("prefect_server", "embedded_aws")
def test_a_deploy_then_a_render_make_only_the_calls_their_policies_allow(tmp_path: Path) -> None:
    from flows.render_narration import render_narration

    current = get_settings()
    documents = policies(current, "123456789012")
    package = tmp_path / "model.tar.gz"
    package.write_bytes(b"a package")
    with recorded_calls() as deploy_calls:
        deploy(current, AwsClients(current.region), DeployOptions(create_role=True), lambda: package)
    allowed = actions(documents["deploy"])
    assert deploy_calls <= allowed, f"deploy calls its policy does not allow: {deploy_calls - allowed}"
    assert allowed - deploy_calls <= DEPLOY_BESIDES_CALLS, allowed - deploy_calls

    script = Path(shutil.copy(EXAMPLES / "demo.yaml", tmp_path / "demo.yaml"))
    with recorded_calls() as render_calls:
        result = render_narration(script=str(script), out_dir=str(tmp_path / "out"))
    assert result["synthesised"] == 8
    allowed = actions(documents["render"])
    assert render_calls <= allowed, f"render calls its policy does not allow: {render_calls - allowed}"
    assert allowed - render_calls <= RENDER_BESIDES_CALLS, allowed - render_calls


def test_the_command_prints_the_three_documents(capsys: pytest.CaptureFixture[str], monkeypatch: Any) -> None:
    monkeypatch.setenv("NARRATE_ROLE_ARN", "arn:aws:iam::210987654321:role/narrate")
    get_settings.cache_clear()
    assert main(["iam-policy"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert tuple(printed) == DOCUMENTS == ("deploy", "render", "endpoint_execution_role")
    assert "210987654321" in json.dumps(printed)
    monkeypatch.delenv("NARRATE_ROLE_ARN")
    get_settings.cache_clear()
    assert main(["iam-policy"]) == 2
    assert "--account" in capsys.readouterr().err
    assert main(["iam-policy", "--account", "123456789012"]) == 0
    assert "arn:aws:sagemaker:us-east-1:123456789012:endpoint/" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("key", "resource"),
    [
        ("arn:aws:kms:eu-west-1:123456789012:key/k1", "arn:aws:kms:eu-west-1:123456789012:key/k1"),
        ("k1", "arn:aws:kms:eu-west-1:123456789012:key/k1"),
        ("alias/narrate-signing", "arn:aws:kms:eu-west-1:123456789012:key/*"),
    ],
)
def test_a_kms_signing_key_is_allowed_to_the_render_only(key: str, resource: str) -> None:
    """NARRATE_PROVENANCE_KMS_KEY_ID: the render may sign with that key (and read its public key) only."""
    documents = policies(settings(provenance_kms_key_id=key), "123456789012")
    [signing] = [s for s in statements(documents["render"]) if s["Sid"] == "SignContentCredentials"]
    assert signing["Action"] == ["kms:Sign", "kms:GetPublicKey"] and signing["Resource"] == [resource]
    assert ("Condition" in signing) == key.startswith("alias/")
    assert not any("kms:Sign" in actions(documents[name]) for name in ("deploy", "endpoint_execution_role"))
    findings = [enhance_finding(f) for f in analyze_policy_string(json.dumps(documents["render"])).findings]
    assert [f.issue for f in findings if f.severity not in {"LOW", "INFO"}] == []
