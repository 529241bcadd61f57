"""template.yaml as data: a YAML loader that reads CloudFormation short-form tags
(!Ref, !GetAtt, !Sub...) as plain values. Shared by check_contract.py and check_build.py."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


class CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation short-form tags as plain values."""


def _tag(loader, tag_suffix, node):
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


CfnLoader.add_multi_constructor("!", _tag)


def load_template(path=ROOT / "template.yaml"):
    return yaml.load(Path(path).read_text(), Loader=CfnLoader)


def functions(template):
    """Logical id -> resource, for every AWS::Serverless::Function."""
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def crate_of(logical_id):
    """MagicConsumeFunction -> magic-consume: the function's crate (the Makefile's crate_of)."""
    import re

    return re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", logical_id.removesuffix("Function")).lower()


def function_table(template):
    """Logical id -> its crate and memory size (the function's own, else Globals')."""
    default = template.get("Globals", {}).get("Function", {}).get("MemorySize", 128)
    return {
        k: {"crate": crate_of(k), "memory": v["Properties"].get("MemorySize", default)}
        for k, v in functions(template).items()
    }


if __name__ == "__main__":
    # `python tools/cfn.py functions`: function_table as JSON, for the Node tools.
    import json
    import sys

    if sys.argv[1:] != ["functions"]:
        sys.exit("usage: cfn.py functions")
    print(json.dumps(function_table(load_template()), sort_keys=True))
