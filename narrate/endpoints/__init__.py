"""Endpoints serve synthesis requests behind one interface, so the flow never knows which one runs.

``sagemaker`` drives an Amazon SageMaker async endpoint (real AWS, or the embedded AWS of local
mode); ``inprocess`` runs the container handler in this process; ``polly`` calls Amazon Polly and
serves every Polly voice whatever the backend (:func:`endpoint_for`). The interface and its types
are in :mod:`narrate.endpoints.base`, the kinds in :mod:`narrate.endpoints.kind`, the live instances
in :mod:`narrate.endpoints.registry`; how renders hold an endpoint is told in
:mod:`narrate.endpoints.hold`.
"""

from narrate.endpoints.base import (
    Endpoint,
    JobRequest,
    JobSummary,
    NothingQueued,
    SegmentNote,
    Submission,
    SynthesisJob,
    Usage,
)
from narrate.endpoints.kind import BACKENDS, NEEDS_AWS, Backend, EndpointKind, endpoint_for
from narrate.endpoints.registry import get_endpoint, register_endpoint, reset_endpoints

__all__ = [
    "BACKENDS",
    "NEEDS_AWS",
    "Backend",
    "Endpoint",
    "EndpointKind",
    "JobRequest",
    "JobSummary",
    "NothingQueued",
    "SegmentNote",
    "Submission",
    "SynthesisJob",
    "Usage",
    "endpoint_for",
    "get_endpoint",
    "register_endpoint",
    "reset_endpoints",
]
