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
