"""The root of the project's own exceptions, so the CLI can turn any of them into one clear line."""


class SliProviderError(Exception):
    """An error of this project whose message is meant for the user."""
