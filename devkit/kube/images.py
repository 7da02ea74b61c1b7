"""Which local k6 binary stands for a container image (the test decides, as a registry would)."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sli_provider.runner.local import find_k6_binary

DEFAULT_RUNNER_IMAGE = "grafana/k6:latest"  # k6-operator's default runner image


@dataclass(frozen=True)
class ImageTable:
    """Ordered (pattern, binary) rules; patterns are ``fnmatch`` globs over the image reference.

    An image no rule matches cannot be pulled: its pod waits in ``ImagePullBackOff`` forever.
    """

    rules: tuple[tuple[str, Path], ...]

    @classmethod
    def of(cls, mapping: Mapping[str, Path | str]) -> ImageTable:
        return cls(tuple((pattern, Path(binary)) for pattern, binary in mapping.items()))

    @classmethod
    def stock(cls) -> ImageTable:
        """``grafana/k6`` (any tag, also as ``docker.io/...``) is the venv's stock k6."""
        k6 = Path(find_k6_binary())
        return cls.of({"grafana/k6": k6, "grafana/k6:*": k6, "docker.io/grafana/k6:*": k6})

    def with_rules(self, mapping: Mapping[str, Path | str]) -> ImageTable:
        """This table with ``mapping``'s rules tried first."""
        return ImageTable(ImageTable.of(mapping).rules + self.rules)

    def binary_for(self, image: str) -> Path | None:
        for pattern, binary in self.rules:
            if fnmatch.fnmatchcase(image, pattern):
                return binary
        return None
