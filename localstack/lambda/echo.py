"""The example function the smoke checks invoke: it echoes its event together with
details only a real invocation has (its own ARN, the request ID), so that a check can
tell a real invocation from an emulator that merely echoes the payload."""

import json


def handler(event, context):
    return {
        "echo": event,
        "function_arn": context.invoked_function_arn,
        "function_version": context.function_version,
        "request_id": context.aws_request_id,
    }
