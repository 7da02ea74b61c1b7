"""Built-in validation of the API server for object metadata, ConfigMaps and Secrets.

Wording and limits follow ``k8s.io/apimachinery/pkg/util/validation`` and
``pkg/apis/core/validation``: names are DNS-1123 subdomains, label keys and values are
qualified names of at most 63 characters, ConfigMap/Secret keys are ``[-._a-zA-Z0-9]+``, and
a ConfigMap or Secret holds at most 1 MiB of data.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_CONFIG_KEY = re.compile(r"[-._a-zA-Z0-9]+")
MAX_SUBDOMAIN = 253
MAX_LABEL = 63
# corev1.MaxSecretSize, also the ConfigMap limit: the data must fit one etcd object.
MAX_DATA_BYTES = 1024 * 1024

Cause = dict[str, str]

_OBJECT_META = frozenset(
    {
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "labels",
        "annotations",
        "ownerReferences",
        "finalizers",
        "managedFields",
    }
)
_TYPE_META = frozenset({"apiVersion", "kind", "metadata"})
# The fields of the built-in kinds clients write; a TestRun's come from its CRD schema.
_KNOWN_FIELDS = {
    "ConfigMap": _TYPE_META | {"data", "binaryData", "immutable"},
    "Secret": _TYPE_META | {"data", "stringData", "type", "immutable"},
}


def prune_unknown_fields(kind: str, obj: dict[str, Any]) -> list[str]:
    """Drop the fields the kind does not have (in ``metadata`` for every kind); their paths, for
    ``fieldValidation`` (Strict refuses them, Warn warns, Ignore drops them silently)."""
    unknown = []
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        for key in [k for k in metadata if k not in _OBJECT_META]:
            del metadata[key]
            unknown.append(f"metadata.{key}")
    known = _KNOWN_FIELDS.get(kind)
    if known is not None:
        for key in [k for k in obj if k not in known]:
            del obj[key]
            unknown.append(key)
    return unknown


def cause(reason: str, field: str, message: str) -> Cause:
    return {"reason": reason, "message": message, "field": field}


def _quote(value: object) -> str:
    return '"' + str(value).replace('"', '\\"') + '"'


def subdomain_errors(value: str, field: str) -> list[Cause]:
    problems = []
    if len(value) > MAX_SUBDOMAIN:
        problems.append(f"must be no more than {MAX_SUBDOMAIN} characters")
    if not DNS1123_SUBDOMAIN.fullmatch(value):
        problems.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. "
            "'example.com', regex used for validation is "
            "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
        )
    return [
        cause("FieldValueInvalid", field, f"Invalid value: {_quote(value)}: {problem}")
        for problem in problems
    ]


def metadata_errors(metadata: dict[str, Any], *, needs_name: bool = True) -> list[Cause]:
    errors: list[Cause] = []
    name = metadata.get("name")
    if needs_name and not name:
        errors.append(
            cause(
                "FieldValueRequired",
                "metadata.name",
                "Required value: name or generateName is required",
            )
        )
    elif isinstance(name, str):
        errors += subdomain_errors(name, "metadata.name")
    for key, value in (metadata.get("labels") or {}).items():
        errors += _label_key_errors(key, "metadata.labels")
        if (
            not isinstance(value, str)
            or len(value) > MAX_LABEL
            or not _LABEL_VALUE.fullmatch(value)
        ):
            errors.append(
                cause(
                    "FieldValueInvalid",
                    "metadata.labels",
                    f"Invalid value: {_quote(value)}: a valid label must be an empty string or "
                    "consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                    f"with an alphanumeric character, at most {MAX_LABEL} characters",
                )
            )
    for key in metadata.get("annotations") or {}:
        errors += _label_key_errors(key, "metadata.annotations")
    return errors


def _label_key_errors(key: str, field: str) -> list[Cause]:
    prefix, _, name = key.rpartition("/")
    valid = (
        bool(name)
        and len(name) <= MAX_LABEL
        and bool(_QUALIFIED_NAME.fullmatch(name))
        and (
            not prefix
            or (len(prefix) <= MAX_SUBDOMAIN and bool(DNS1123_SUBDOMAIN.fullmatch(prefix)))
        )
    )
    if valid:
        return []
    return [
        cause(
            "FieldValueInvalid",
            field,
            f"Invalid value: {_quote(key)}: name part must consist of alphanumeric characters, "
            "'-', '_' or '.', and must start and end with an alphanumeric character, with an "
            "optional DNS subdomain prefix and '/'",
        )
    ]


def _key_errors(key: str, field: str) -> list[Cause]:
    if len(key) <= MAX_SUBDOMAIN and _CONFIG_KEY.fullmatch(key) and key not in (".", ".."):
        return []
    return [
        cause(
            "FieldValueInvalid",
            field,
            f"Invalid value: {_quote(key)}: a valid config key must consist of alphanumeric "
            "characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', "
            "regex used for validation is '[-._a-zA-Z0-9]+')",
        )
    ]


def decode_base64_values(data: dict[str, Any], field: str) -> dict[str, bytes]:
    """Byte fields arrive base64-encoded in JSON; bad base64 fails decoding (400), not validation."""
    from devkit.kube.status import bad_request

    decoded = {}
    for key, value in data.items():
        try:
            decoded[key] = base64.b64decode(str(value), validate=True)
        except (binascii.Error, ValueError) as error:
            raise bad_request(f"illegal base64 data in {field}[{key}]: {error}") from None
    return decoded


def configmap_errors(obj: dict[str, Any]) -> list[Cause]:
    errors: list[Cause] = []
    data = obj.get("data") or {}
    binary = decode_base64_values(obj.get("binaryData") or {}, "binaryData")
    size = 0
    for key, value in data.items():
        errors += _key_errors(key, f"data[{key}]")
        size += len(key) + len(str(value).encode())
    for key, value in binary.items():
        errors += _key_errors(key, f"binaryData[{key}]")
        if key in data:
            errors.append(
                cause(
                    "FieldValueDuplicate", f"binaryData[{key}]", f"Duplicate value: {_quote(key)}"
                )
            )
        size += len(key) + len(value)
    if size > MAX_DATA_BYTES:
        errors.append(
            cause("FieldValueTooLong", "[]", f"Too long: must have at most {MAX_DATA_BYTES} bytes")
        )
    return errors


def secret_errors(obj: dict[str, Any]) -> list[Cause]:
    errors: list[Cause] = []
    data = decode_base64_values(obj.get("data") or {}, "data")
    size = 0
    for key, value in data.items():
        errors += _key_errors(key, f"data[{key}]")
        size += len(value)
    if size > MAX_DATA_BYTES:
        errors.append(
            cause(
                "FieldValueTooLong", "data", f"Too long: must have at most {MAX_DATA_BYTES} bytes"
            )
        )
    return errors


def fold_string_data(obj: dict[str, Any]) -> None:
    """A Secret's ``stringData`` is write-only: the server merges it into ``data`` (it wins)."""
    obj.setdefault("type", "Opaque")
    string_data = obj.pop("stringData", None) or {}
    if string_data:
        data = obj.setdefault("data", {})
        for key, value in string_data.items():
            data[key] = base64.b64encode(str(value).encode()).decode()
