"""Creates the example Lambda functions the example plans' smoke checks invoke.

Run by localstack/up with the emulator's own Python (botocore is there); idempotent.
Usage: python functions.py   (AWS_ENDPOINT_URL, AWS_REGION and credentials from the env)
"""

import io
import os
import sys
import time
import zipfile

import botocore.session

FUNCTIONS = ["ably-sink", "swimlane-target", "chime-user-alice", "chime-user-bob"]
ROLE = "iamplan-example-lambda"
TRUST = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}'


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    session = botocore.session.get_session()
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    region = os.environ.get("AWS_REGION", "us-east-1")
    iam = session.create_client("iam", endpoint_url=endpoint, region_name=region)
    lam = session.create_client("lambda", endpoint_url=endpoint, region_name=region)
    try:
        role_arn = iam.get_role(RoleName=ROLE)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role_arn = iam.create_role(RoleName=ROLE, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.write(os.path.join(here, "lambda", "echo.py"), "echo.py")
    code = buf.getvalue()
    for name in FUNCTIONS:
        try:
            lam.get_function(FunctionName=name)
            continue
        except lam.exceptions.ResourceNotFoundException:
            pass
        lam.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role_arn,
            Handler="echo.handler",
            Code={"ZipFile": code},
            Timeout=10,
        )
    # New functions start Pending; wait until every one is Active.
    deadline = time.time() + 60
    for name in FUNCTIONS:
        while True:
            state = lam.get_function(FunctionName=name)["Configuration"].get("State", "Active")
            if state == "Active":
                break
            if state == "Failed" or time.time() > deadline:
                sys.exit(f"function {name} is {state}")
            time.sleep(0.2)
    # An alias, so that checks can show a permission that misses the qualifier.
    try:
        lam.get_alias(FunctionName="swimlane-target", Name="prod")
    except lam.exceptions.ResourceNotFoundException:
        version = lam.publish_version(FunctionName="swimlane-target")["Version"]
        lam.create_alias(FunctionName="swimlane-target", Name="prod", FunctionVersion=version)
    print(f"example functions ready: {', '.join(FUNCTIONS)} (role {ROLE})", file=sys.stderr)


if __name__ == "__main__":
    main()
