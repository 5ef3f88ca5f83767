"""Redaction: secrets never reach an output, whatever writes it.

Values of secret-looking keys are masked, and every known secret string (access keys,
session tokens, a task definition's secret references and secret-looking environment
values) is replaced wherever it appears. Logs, reports and the pipeline's error
messages all go through one ``Redactor``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

import structlog

from ecs_deploy_many.core.target import Target, target_as_data

__all__ = [
    "IDENTITY_FIELDS",
    "MASK",
    "Redactor",
    "edit_secrets",
    "replace_task_definition_secrets",
    "run_redactor",
    "target_record",
    "task_definition_secrets",
]

MASK = "***"
SECRET_KEY = re.compile(r"secret|password|token|credential|access_key", re.IGNORECASE)
# Names whose values are secrets: DB_PASSWORD, API_KEY, AUTH_TOKEN, a log driver's apikey.
SECRET_VARIABLE = re.compile(r"secret|passw|token|credential|private|dsn|key$", re.IGNORECASE)
# Long enough not to mask ordinary words that happen to equal a short secret.
MIN_SECRET_LENGTH = 4
# A value secret by its name alone (KEY=value) is learned only when it is at least this
# long and not a plain word: "value", "true" or "disabled" are configuration, and masking
# them would mangle every message that uses the word.
MIN_NAMED_SECRET_LENGTH = 8
IDENTITY_FIELDS = frozenset(
    {
        "target",
        "name",
        "cluster",
        "service",
        "task_definition",
        "region",
        "wave",
        "family",
        "container",
        "depends_on",
        "old_task_definition",
        "new_task_definition",
        "to_task_definition",
        "task_definitions",
        "task",
        "deployment_id",
    }
)
"""Fields naming what a line or report entry is about: never rewritten (a name is not a secret)."""
# Where a task definition holds a secret by its place, whatever the value's type: the
# references themselves, at any depth (containers' secrets and log secretOptions,
# repositoryCredentials, an FSx volume's authorizationConfig, gMSA credentialSpecs)...
SECRET_REFERENCES = frozenset({"valueFrom", "credentialsParameter", "credentialSpecs"})
# ...and the holders of references, every value in which but a ``name`` is secret however
# it was shaped (a string, a mapping or a list where ECS wants a list of objects).
SECRET_HOLDERS = frozenset({"secrets", "secretOptions", "repositoryCredentials"})
# Keys naming the variable of a name/value pair (environment, proxy properties, tags).
PAIR_NAMES = ("name", "key")
# NAME=VALUE: a whole string (an environment variable as docker-compose habits write
# it), or one option among others (``--db-password=...``, a CIFS mount's ``password=...``).
ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=(.+)", re.DOTALL)
INNER_ASSIGNMENT = re.compile(r"([A-Za-z_][A-Za-z0-9_.-]*)=([^\s,;&\"']+)")

SecretReplacer = Callable[[Any, bool], Any]
"""Given a secret value and whether only its name makes it secret, what to put instead."""


class Redactor:
    """Masks secrets where values appear, and never touches a name.

    It is a structlog processor, and ``scrub`` does the same for the report writers. A
    known secret string is masked wherever it occurs in free text (error messages, ECS
    events), and so is the value of a secret-looking key. Identity fields
    (``IDENTITY_FIELDS``: target, cluster, service, task definition, region, wave, ARNs)
    are left as they are, and the names seen there (or given to ``keep``) stay whole in
    free text too, even when a secret occurs inside one: identity wins, and a secret that
    is also part of a name is shown as part of that name.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._secrets: set[str] = set()
        self._names: set[str] = set()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Remember more secret strings (e.g. a task definition's secret references)."""
        self._secrets.update(s for s in secrets if s and len(s) >= MIN_SECRET_LENGTH)

    def keep(self, targets: Iterable[Target]) -> None:
        """Remember the names of ``targets`` (and their clusters, services...) as names."""
        for target in targets:
            fields = (target.name, target.cluster, target.service, target.task_definition)
            self._names.update(n for n in (*fields, target.scope.region, target.wave) if n)

    def scrub(self, value: Any) -> Any:
        """``value`` with every secret masked; a mapping's identity fields are left as they are."""
        self._names.update(_identity_values(value))
        return self._scrub(value)

    def __call__(
        self, logger: Any, method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        if "exc_info" in event_dict:  # a traceback quotes what failed: mask it too
            event_dict = structlog.processors.format_exc_info(logger, method, event_dict)
        self._names.update(_identity_values(event_dict))
        for key, value in event_dict.items():
            if key not in IDENTITY_FIELDS:
                event_dict[key] = MASK if _secret_key(key) and value else self._scrub(value)
        return event_dict

    def _scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._mask(value)
        if isinstance(value, dict):
            return {
                k: v if k in IDENTITY_FIELDS else MASK if _secret_key(k) else self._scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, list | tuple):
            return [self._scrub(v) for v in value]
        return value

    def _mask(self, text: str) -> str:
        """``text`` with each secret occurrence masked, except inside a known name."""
        found = [secret for secret in self._secrets if secret in text]
        if not found:
            return text
        names = [span for name in self._names if name in text for span in _spans(text, name)]
        masked = sorted(
            (start, end)
            for secret in found
            for start, end in _spans(text, secret)
            if not any(first <= start and end <= last for first, last in names)
        )
        parts: list[str] = []
        shown = 0  # text[:shown] is dealt with; overlapping secrets merge into one mask
        for start, end in masked:
            if start >= shown:
                parts += [text[shown:start], MASK]
            shown = max(shown, end)
        return "".join([*parts, text[shown:]])


def _spans(text: str, part: str) -> Iterator[tuple[int, int]]:
    """Where ``part`` occurs in ``text``, overlapping occurrences included."""
    start = text.find(part)
    while start != -1:
        yield start, start + len(part)
        start = text.find(part, start + 1)


def _identity_values(value: Any) -> Iterator[str]:
    """The names held by identity fields anywhere in ``value``."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key in IDENTITY_FIELDS:
                names = item if isinstance(item, list | tuple) else [item]
                yield from (name for name in names if isinstance(name, str) and name)
            else:
                yield from _identity_values(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _identity_values(item)


def _secret_key(key: Any) -> bool:
    return isinstance(key, str) and bool(SECRET_KEY.search(key))


def _secret_name(name: Any) -> bool:
    return isinstance(name, str) and bool(SECRET_VARIABLE.search(name))


def replace_task_definition_secrets(node: Any, replace: SecretReplacer) -> Any:
    """A copy of ``node`` (a task definition, or any part) with every secret replaced.

    Secret by place: whatever ``SECRET_REFERENCES`` and ``SECRET_HOLDERS`` hold. Secret by
    name: the value of a name/value pair (an environment variable, a proxy property, a
    tag) or of a mapping key (log and FireLens options, docker labels, volume driver
    options and labels) whose name looks secret, and ``NAME=VALUE`` in any string alike
    (an environment entry as a string, a command's option, a mount option). Shapes
    ECS would refuse (a list or an object where a string belongs, a mapping where a list
    of pairs belongs) are followed the same way, so a wrongly typed secret is still found.
    Environment files are not secret: their S3 ARNs name where configuration lives, as
    an image names a repository.
    """
    if isinstance(node, dict):
        copied: dict[Any, Any] = {}
        for key, value in node.items():
            if key in SECRET_REFERENCES:
                copied[key] = replace(value, False)
            elif key in SECRET_HOLDERS:
                copied[key] = _replace_held(value, replace)
            elif _secret_name(_deciding_name(node, key)):
                copied[key] = replace(value, True)
            else:
                copied[key] = replace_task_definition_secrets(value, replace)
        return copied
    if isinstance(node, list):
        return [replace_task_definition_secrets(item, replace) for item in node]
    if isinstance(node, str):
        return _replace_assignments(node, replace)
    return node


def _replace_assignments(text: str, replace: SecretReplacer) -> str:
    """``text`` with the value of each ``NAME=VALUE`` whose name looks secret replaced."""
    whole = ASSIGNMENT.fullmatch(text)
    if whole and _secret_name(whole[1]):
        return f"{whole[1]}={replace(whole[2], True)}"
    return INNER_ASSIGNMENT.sub(
        lambda found: (
            f"{found[1]}={replace(found[2], True)}" if _secret_name(found[1]) else found[0]
        ),
        text,
    )


def _deciding_name(node: Mapping[Any, Any], key: Any) -> Any:
    """The name saying whether ``node[key]`` is secret: a pair's name for its value, else
    the key itself; the name of a pair (its ``name`` or ``key``) is never secret."""
    pair_name = next((node[k] for k in PAIR_NAMES if k in node), None) if "value" in node else None
    if pair_name is None:
        return key
    return pair_name if key == "value" else None if key in PAIR_NAMES else key


def _replace_held(held: Any, replace: SecretReplacer) -> Any:
    """A holder of secret references with each replaced; only the names stay."""
    if isinstance(held, list):
        return [_replace_held(item, replace) for item in held]
    if isinstance(held, dict):
        return {k: v if k == "name" else replace(v, False) for k, v in held.items()}
    return replace(held, False)


def task_definition_secrets(definition: Mapping[str, Any]) -> list[str]:
    """The strings of a task definition (a RegisterTaskDefinition body) never to show.

    Every secret ``replace_task_definition_secrets`` finds, in every form an output may
    quote it: as given, escaped inside a quoted string, and for a wrongly typed value
    (which the AWS client's ParamValidationError prints with ``str``) the whole value
    as Python and as JSON prints it, and each string and number inside it. A value that
    is secret by its name alone must be long and not a plain word (``KEY=value`` is
    configuration); other environment values (``prod``, ``eu-west-1``) are configuration
    that also names clusters and regions.
    """
    found: list[str] = []

    def learn(value: Any, named: bool) -> Any:
        least = MIN_NAMED_SECRET_LENGTH if named else MIN_SECRET_LENGTH
        found.extend(
            form
            for form in _quoted_forms(value, keys=not named)
            if len(form) >= least and not (named and form.isalpha())
        )
        return value

    replace_task_definition_secrets(definition, learn)
    return list(dict.fromkeys(found))


def _quoted_forms(value: Any, *, keys: bool) -> Iterator[str]:
    """Every way an output may quote ``value``; with ``keys``, a mapping's keys too."""
    if value is None or isinstance(value, bool):  # a bit, not a secret
        return
    if isinstance(value, str):
        yield from (value, repr(value)[1:-1], json.dumps(value)[1:-1])
        return
    yield str(value)
    if isinstance(value, int | float):
        return
    yield repr(value)
    for ascii_only in (True, False):
        yield json.dumps(value, default=str, skipkeys=True, ensure_ascii=ascii_only)
    items = list(value.items()) if isinstance(value, Mapping) else []
    leaves = value if isinstance(value, list | tuple) else [v for _, v in items]
    for leaf in [*leaves, *(k for k, _ in items if keys)]:
        yield from _quoted_forms(leaf, keys=keys)


_VALUED_EDITS = ("environment", "secrets", "docker_labels")


def edit_secrets(target: Target) -> list[str]:
    """The values a target's edits set that are never to show, in every quoted form.

    Secret references all; environment and label values whatever their name (a plan
    names the variable, not whether it is secret), when long and not a plain word, by
    the rule for values secret by their name (``debug`` or ``true`` is configuration).
    """
    found: list[str] = []
    edits = target.edits
    for container in [edits.unnamed, *edits.containers.values()]:
        settings = [*container.environment.values(), *container.docker_labels.values()]
        values = [
            *((value, MIN_SECRET_LENGTH) for value in container.secrets.values() if value),
            *((value, MIN_NAMED_SECRET_LENGTH) for value in settings if value),
        ]
        for value, least in values:
            if least == MIN_NAMED_SECRET_LENGTH and value.isalpha():
                continue
            found.extend(form for form in _quoted_forms(value, keys=False) if len(form) >= least)
    return found


def target_record(target: Target, redactor: Redactor) -> Any:
    """``target`` as data fit for a record that outlives the run (a journal): scrubbed,
    and every environment, secret and label value its edits set masked, as any of
    them may be a secret. The names stay, and a removal (null) stays a removal."""
    data = target_as_data(target)
    edits = data.get("edits")
    if edits is not None:
        for container in [edits["unnamed"], *edits["containers"].values()]:
            for key in _VALUED_EDITS:
                container[key] = {
                    name: None if value is None else MASK for name, value in container[key].items()
                }
    return redactor.scrub(data)


def run_redactor(
    environ: Mapping[str, str],
    *,
    targets: Iterable[Target] = (),
    definitions: Iterable[Mapping[str, Any]] = (),
    keys: Iterable[str] = (),
) -> Redactor:
    """A redactor for one run: the AWS secrets in ``environ``, ``keys`` given as flags,
    the secrets of the task definitions the run was handed as files (the targets' own
    and ``definitions``), and the targets' names, kept whole from the first line on."""
    targets = list(targets)
    redactor = Redactor(keys)
    redactor.add([environ.get("AWS_SECRET_ACCESS_KEY", ""), environ.get("AWS_SESSION_TOKEN", "")])
    files = [t.task_definition_body for t in targets if t.task_definition_body is not None]
    for definition in [*files, *definitions]:
        redactor.add(task_definition_secrets(definition))
    for target in targets:
        redactor.add(edit_secrets(target))
    redactor.keep(targets)
    return redactor
