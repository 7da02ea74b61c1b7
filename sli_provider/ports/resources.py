"""The resource port: reading one resource (sli.yaml, a k6 configuration) at one level."""

from __future__ import annotations

from typing import Protocol

from sli_provider.errors import SliProviderError


class ResourceError(SliProviderError):
    """A resource level answered something other than "here it is" or "not here"."""


class ResourceReader(Protocol):
    """Reads one resource at one level; None means "not at this level"."""

    async def read(
        self, uri: str, project: str, stage: str | None, service: str | None, commit: str
    ) -> bytes | None: ...

    def describe(self, uri: str, project: str, stage: str | None, service: str | None) -> str: ...
