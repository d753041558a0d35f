"""The endpoint's container image in the endpoint's own region, from the SageMaker SDK's image table.

``sagemaker-core`` (the SageMaker Python SDK's core package) ships the table of the Hugging Face
PyTorch inference images: per version, the registry account of every region, the repository and the
tag's parts. Importing ``sagemaker.core`` takes about 3 s (it loads every resource shape), so the table
is read here as the data file it is, and the URI built as ``sagemaker.core.image_uris.retrieve``
builds it (tests/narrate/aws/test_images.py compares the two for every region of the table). The ECR
hostname of a region comes from botocore's endpoint data, as the SDK takes it. ``NARRATE_IMAGE_URI``
wins over all of this.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from narrate.errors import ConfigError

TRANSFORMERS_VERSION = "4.49.0"  # the Hugging Face PyTorch inference image narrate's handler targets
PYTORCH_VERSION = "2.6.0"
PY_VERSION = "py312"
TABLE = "sagemaker/core/image_uri_config/huggingface.json"


@dataclass(frozen=True)
class ImageRef:
    """Where an ECR image lives: the registry's account and region, the repository and the tag."""

    account: str
    region: str
    repository: str
    tag: str

    @classmethod
    def parse(cls, uri: str) -> ImageRef:
        """``<account>.dkr.ecr.<region>.<domain>/<repository>:<tag>``; ConfigError for anything else."""
        host, _, path = uri.partition("/")
        parts = host.split(".")
        repository, _, tag = path.partition(":")
        if len(parts) < 5 or parts[1:3] != ["dkr", "ecr"] or not parts[0].isdigit() or not repository:
            raise ConfigError(
                f"NARRATE_IMAGE_URI={uri!r} is not an ECR image (<account>.dkr.ecr.<region>.amazonaws.com/"
                "<repository>:<tag>); give one, or unset it to use the SageMaker SDK's image for the region"
            )
        return cls(parts[0], parts[3], repository, tag or "latest")

    def repository_arn(self, partition: str = "aws") -> str:
        return f"arn:{partition}:ecr:{self.region}:{self.account}:repository/{self.repository}"


def image_uri(region: str, instance_type: str, override: str | None = None) -> str:
    """The image the endpoint's model runs: ``override`` (NARRATE_IMAGE_URI) if set, else the SDK
    table's Hugging Face PyTorch inference image for the region and the instance's processor."""
    if override:
        ImageRef.parse(override)
        return override
    return sdk_image_uri(region, instance_type)


@functools.lru_cache(maxsize=32)
def sdk_image_uri(region: str, instance_type: str) -> str:
    config = _version_config()
    registries: dict[str, str] = config["registries"]
    if region not in registries:
        raise ConfigError(
            f"NARRATE_REGION={region}: the SageMaker SDK's table has no Hugging Face PyTorch "
            f"{PYTORCH_VERSION} / transformers {TRANSFORMERS_VERSION} image there (it lists "
            f"{', '.join(sorted(registries))}); pick one of those, or set NARRATE_IMAGE_URI"
        )
    processor = processor_of(instance_type)
    tag = (
        f"{PYTORCH_VERSION}-transformers{TRANSFORMERS_VERSION}-{processor}-{PY_VERSION}-"
        f"{config['container_version'][processor]}"
    )
    return f"{registries[region]}.dkr.{ecr_hostname(region)}/{config['repository']}:{tag}"


def table_regions() -> list[str]:
    """Every region the SDK's table has the image in."""
    return sorted(_version_config()["registries"])


def processor_of(instance_type: str) -> str:
    """``gpu`` for the accelerated families (p, g), ``cpu`` for the others the image serves."""
    family = instance_type.removeprefix("ml.").split(".")[0]
    if family.startswith(("inf", "trn")):
        raise ConfigError(
            f"NARRATE_INSTANCE_TYPE={instance_type}: Inferentia and Trainium need a Neuron image; "
            "set NARRATE_IMAGE_URI to one, or use a GPU instance (ml.g5.xlarge)"
        )
    return "gpu" if family[:1] in {"g", "p"} else "cpu"


def ecr_hostname(region: str) -> str:
    """ECR's hostname in a region, from botocore's endpoint data (``ecr.<region>.amazonaws.com`` and
    its partition's equivalents)."""
    from botocore.loaders import create_loader
    from botocore.regions import EndpointResolver

    resolver = EndpointResolver(create_loader().load_data("endpoints"))
    endpoint = resolver.construct_endpoint("ecr", region) or {"hostname": f"ecr.{region}.amazonaws.com"}
    return str(endpoint["hostname"])


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@functools.lru_cache(maxsize=1)
def _version_config() -> dict[str, Any]:
    try:
        distribution = metadata.distribution("sagemaker-core")
    except metadata.PackageNotFoundError:
        raise ConfigError(
            "the SageMaker SDK's image table (package sagemaker-core) is not installed; reinstall "
            "narrate (pip install -e .), or set NARRATE_IMAGE_URI"
        ) from None
    table = json.loads(distribution.locate_file(TABLE).read_text(encoding="utf-8"))["inference"]
    return dict(table["versions"][TRANSFORMERS_VERSION][f"pytorch{PYTORCH_VERSION}"])
