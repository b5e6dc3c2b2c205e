"""YAML reading for splits, cards and --set values.

PyYAML implements YAML 1.1, where `1e-4` (no dot) is a *string*, so `--set train.lr=1e-4` or
`lr: 2.5e-4` in a card would silently become text. This loader reads such values as floats,
as YAML 1.2 and every researcher expects.
"""

from __future__ import annotations

import re

import yaml

__all__ = ["load_yaml", "YAMLError"]

YAMLError = yaml.YAMLError


# libyaml's parser when PyYAML has it (about 10x faster: `zsbench ls methods` reads every card);
# the resolvers below are Python-side either way, so both read the same values.
class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    pass


_FLOAT = re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X)
_Loader.yaml_implicit_resolvers = {k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
                                   for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def load_yaml(text):
    return yaml.load(text, Loader=_Loader)  # noqa: S506 (a SafeLoader subclass)
