"""Run inside the scratch venv that holds the real SageMaker Hugging Face inference toolkit (see
test_toolkit.py): load an extracted model.tar.gz the way the multi-model-server worker does and answer
requests, or run the toolkit's own requirements install.

    python toolkit_driver.py serve MODEL_DIR CASES.json OUT.json
    python toolkit_driver.py install   (SAGEMAKER_BASE_DIR says where model/code/requirements.txt is)

Each case is {"body_b64", "content_type", "accept"}; each result {"code", "message", "content_type",
"body_b64"} decoded from the worker's own binary response (mms.protocol.otf_message_handler).
"""

from __future__ import annotations

import base64
import json
import struct
import sys


def read_int(data: bytes, at: int) -> tuple[int, int]:
    return struct.unpack("!i", data[at : at + 4])[0], at + 4


def read_bytes(data: bytes, at: int) -> tuple[bytes, int]:
    size, at = read_int(data, at)
    return data[at : at + size], at + size


def decode_response(data: bytes) -> dict[str, object]:
    """create_predict_response's bytes: code, message, then one entry for the one request."""
    code, at = read_int(data, 0)
    message, at = read_bytes(data, at)
    _, at = read_bytes(data, at)  # request id
    content_type, at = read_bytes(data, at)
    status, at = read_int(data, at)
    _, at = read_bytes(data, at)  # reason phrase
    headers, at = read_int(data, at)
    for _ in range(headers):
        _, at = read_bytes(data, at)
        _, at = read_bytes(data, at)
    body, at = read_bytes(data, at)
    return {
        "code": code if code != 200 else status,
        "message": message.decode(),
        "content_type": content_type.decode(),
        "body_b64": base64.b64encode(body).decode(),
    }


def serve(model_dir: str, cases_path: str, out_path: str) -> None:
    from mms.model_loader import MmsModelLoader

    # What the toolkit's start-up registers as the model's handler (mms_model_server.DEFAULT_HANDLER_SERVICE).
    handler = "sagemaker_huggingface_inference_toolkit.handler_service"
    service = MmsModelLoader().load("model", model_dir, handler, None, 1)
    results = []
    with open(cases_path) as listing:
        cases = json.load(listing)
    for index, case in enumerate(cases):
        headers = [{"name": b"Content-Type", "value": case["content_type"].encode()}]
        if case.get("accept"):
            headers.append({"name": b"Accept", "value": case["accept"].encode()})
        batch = [{
            "requestId": str(index).encode(),
            "parameters": [{"name": "body", "contentType": case["content_type"],
                            "value": base64.b64decode(case["body_b64"])}],
            "headers": headers,
        }]  # fmt: skip
        results.append(decode_response(bytes(service.predict(batch))))
    with open(out_path, "w") as out:
        json.dump(results, out)


def install() -> None:
    from sagemaker_inference import model_server

    model_server._install_requirements()
    print("installed from", model_server.REQUIREMENTS_PATH)


if __name__ == "__main__":
    if sys.argv[1] == "serve":
        serve(*sys.argv[2:5])
    else:
        install()
