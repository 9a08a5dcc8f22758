"""Formats the API server or the image build refuse are refused where the user writes them,
with the key and the fix; stack files are read strictly; messages carry no pydantic wording,
regular expression or Python repr."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from hardened_k8s import formats
from hardened_k8s.config import ConfigError
from hardened_k8s.mock_engine import load_stack_file, run_program
from hardened_k8s.quantities import parse_quantity, positive_quantity
from hardened_k8s.stack_config import secrets_used

from ..conftest import PROJECT, ROOT, engine_config, run_stack, stack_file_config
from .test_render import one_service_project, project_copy, render

API = "services.store-inventory"
PINNED = "quay.io/ecosystem-appeng/app@sha256:" + "a" * 64


def config_error(edit: Any) -> ConfigError:
    config = stack_file_config("dev")
    edit(config)
    with pytest.raises(ConfigError) as caught:
        run_stack("dev", config)
    return caught.value


def problem(error: ConfigError, path: str) -> str:
    found = [message for where, message in error.problems if where == path]
    assert found, (path, error.problems)
    return found[0]


def api(config: dict[str, Any]) -> dict[str, Any]:
    return config["services"]["store-inventory"]  # type: ignore[no-any-return]


# --- The checkers, at and beyond their limits ----------------------------------------------


@pytest.mark.parametrize(
    "host", ["mcp.example.com", "*.example.com", "localhost", "a" * 63 + ".example.com", "x-1.y2.io"]
)
def test_ingress_hosts_the_api_server_accepts(host: str) -> None:
    assert formats.ingress_host(host) == host


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("10.0.0.1", "is an IP address"),
        ("*.*.example.com", 'a "*" that is not the whole first label'),
        ("mcp*.example.com", 'a "*" that is not the whole first label'),
        ("MCP.example.com", '"mcp.example.com"'),
        ("mcp_1.example.com", '"mcp-1.example.com"'),
        ("-mcp.example.com", "starting and ending with a letter or digit"),
        ("a" * 64 + ".example.com", "at most 63 per label"),
        ("a." * 127 + "io", "not a DNS name"),
    ],
)
def test_ingress_hosts_the_api_server_refuses(host: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        formats.ingress_host(host)


def test_dns_names_at_their_limits() -> None:
    assert formats.dns_1123_label("a" * 63) and formats.dns_1123_label("0ns")
    assert formats.dns_1123_subdomain("a" * 63 + "." + "b" * 189) and formats.dns_1123_subdomain("nginx.io")
    for bad in ("a" * 64, "ns.x", "Ns", "ns-", ""):
        with pytest.raises(ValueError, match="not a DNS-1123 label"):
            formats.dns_1123_label(bad)
    for bad in ("a" * 254, "tls..secret", "TLS", "tls_secret", ".tls"):
        with pytest.raises(ValueError, match="not a DNS-1123 subdomain"):
            formats.dns_1123_subdomain(bad)


@pytest.mark.parametrize(
    "ref",
    [
        PINNED,
        "quay.io/org/app:1.0",
        "localhost:5000/app:latest",
        "registry.example.com:443/a/b/c@sha256:" + "0" * 64,
        "quay.io/org/app:v1@sha256:" + "b" * 64,
        "docker.io/library/postgres:16",
        "app__x/y-z.w:tag_1",
    ],
)
def test_image_references_the_distribution_grammar_accepts(ref: str) -> None:
    assert formats.image_reference(ref) == ref


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("quay.io/Org/App:1.0", "must be lower-case"),
        ("quay.io/org/app", "names no tag or digest"),
        ("https://quay.io/org/app:1", "URL scheme"),
        ("quay.io/org/app:.bad", 'has the tag ".bad"'),
        ("quay.io/org/app:" + "t" * 129, "has the tag"),
        ("quay.io/org/app@sha256:abc", "64 lower-case hex digits"),
        ("quay.io/org/app@md5:" + "a" * 32, "use sha256:"),
        ("quay.io/org//app:1", "not an image reference"),
        ("quay.io/org/app :1", "white space"),
        ("quay.io/" + "a" * 250 + ":1", "at most 255"),
    ],
)
def test_image_references_the_build_or_the_runtime_refuses(ref: str, words: str) -> None:
    with pytest.raises(ValueError, match=re.escape(words)):
        formats.image_reference(ref)


def test_registries() -> None:
    for good in ("quay.io/ecosystem-appeng", "localhost:5000", "ghcr.io/a/b", "10.0.0.1:5000/x"):
        assert formats.registry(good) == good
    for bad, words in [
        ("https://quay.io/org", 'drop it: "quay.io/org"'),
        ("quay.io/Org", "not a registry"),
        ("quay.io/org/", "without a trailing '/'"),
        ("quay.io/org:1", "not a registry"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            formats.registry(bad)


def test_platforms_are_the_ones_buildkit_builds() -> None:
    for arch, variants in formats.PLATFORM_VARIANTS.items():
        assert formats.platform(f"linux/{arch}")
        for variant in variants:
            assert formats.platform(f"linux/{arch}/{variant}")
    for bad, words in [
        ("linux/x86_64", '"linux/amd64"'),
        ("linux/aarch64", '"linux/arm64"'),
        ("amd64", '"linux/amd64"'),
        ("windows/amd64", "os/arch[/variant]"),
        ("linux/amd64/v9", "linux/amd64/v1, linux/amd64/v2"),
        ("linux/386/v1", "linux/386 (no variant)"),
        ("linux/sparc", 'no architecture "sparc"'),
        ("linux/amd64,linux/arm64", "names several platforms"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            formats.platform(bad)


def test_http_paths() -> None:
    for good in ("/", "/ready", "/health?full=1", "/a/b-c_d.e~f/%20", "/v1:check"):
        assert formats.http_path(good) == good
    for bad, words in [
        ("ready", 'must start with "/", e.g. "/ready"'),
        ("/re ady", "contains a space"),
        ("/ready\n", "contains a line break"),
        ("/ready#x", 'contains "#"'),
        ("/100%", 'a "%" not followed by two hex digits'),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            formats.http_path(bad)


def test_quantities_follow_the_kubernetes_grammar_with_sign_and_zero_rules() -> None:
    assert parse_quantity("+1") == 1 and parse_quantity("-0") == 0 and parse_quantity("1E3") == 1000
    assert parse_quantity(".5") == parse_quantity("500m") and parse_quantity("1.") == 1
    assert parse_quantity("7Ei") == 7 * 2**60
    for bad, words in [
        ("-1", '"-1" is negative'),
        ("-500m", "must be 0 or more, e.g. 500m"),
        ("8Ei", "larger than Kubernetes can store"),
        ("1e19", "exponent beyond"),
        ("512MB", 'write "512Mi" or "512M"'),
        ("1 Gi", "not a Kubernetes quantity"),
    ]:
        with pytest.raises(ValueError, match=re.escape(words)):
            parse_quantity(bad)
    with pytest.raises(ValueError, match="is zero; give an amount above zero"):
        positive_quantity("0m")


def test_build_stage_and_postgres_names() -> None:
    assert formats.build_stage("runtime") and formats.postgres_identifier("store_db")
    with pytest.raises(ValueError, match="not a Containerfile stage name"):
        formats.build_stage("run time")
    with pytest.raises(ValueError, match=re.escape('e.g. "store_db"')):
        formats.postgres_identifier("store-db")
    with pytest.raises(ValueError, match=re.escape('e.g. "_1db"')):
        formats.postgres_identifier("1db")


# --- Through the stack file: the key and the fix -------------------------------------------


@pytest.mark.parametrize(
    ("key", "edit", "words"),
    [
        (
            f"{API}.expose.host",
            lambda c: api(c).update(expose={"host": "1.2.3.4", "tlsSecretName": "t"}),
            "IP",
        ),
        (
            f"{API}.expose.ingressClassName",
            lambda c: api(c).update(
                expose={"host": "a.io", "tlsSecretName": "t", "ingressClassName": "Nginx"}
            ),
            "DNS-1123 subdomain",
        ),
        ("registry", lambda c: c.update(registry="https://quay.io/org"), "URL scheme"),
        ("platform", lambda c: c.update(platform="linux/x86_64"), '"linux/amd64"'),
        (
            f"{API}.probes.readinessPath",
            lambda c: api(c)["probes"].update(readinessPath="/re ady"),
            "a space",
        ),
        (f"{API}.resources.limits.cpu", lambda c: api(c)["resources"]["limits"].update(cpu="0"), "is zero"),
        ("database.storage", lambda c: c["database"].update(storage="-1Gi"), "is negative"),
        (
            "database.storageClassName",
            lambda c: c["database"].update(storageClassName="Fast_SSD"),
            "DNS-1123",
        ),
        ("database.user", lambda c: c["database"].update(user="Store-User"), "not a PostgreSQL name"),
        (
            f"{API}.image.build.target",
            lambda c: api(c)["image"]["build"].update(target="run time"),
            "stage name",
        ),
        (f"{API}.image.ref", lambda c: api(c).update(image={"ref": "Quay.io/Org/App:1"}), "lower-case"),
        ("imageRevision", lambda c: c.update(imageRevision="HEAD"), "not a full commit id"),
        (f"{API}.port", lambda c: api(c).update(port="eighty"), 'is "eighty", not a whole number'),
        (f"{API}.version", lambda c: api(c).update(version=1.1), 'quote the value, e.g. "1.1"'),
    ],
)
def test_stack_file_formats_are_refused_with_key_and_fix(key: str, edit: Any, words: str) -> None:
    message = problem(config_error(edit), key)
    assert words in message
    assert_plain(message)


def test_database_tag_in_production_names_the_reference() -> None:
    error = config_error(
        lambda c: (c.update(production=True), c["database"].update(image="docker.io/library/postgres:16"))
    )
    message = problem(error, "database.image.ref")
    assert message.startswith('"docker.io/library/postgres:16" has no digest') and "ImageSpec" not in message


def test_placeholder_digest_in_production_names_the_key() -> None:
    zero = "quay.io/org/app@sha256:" + "0" * 64
    error = config_error(
        lambda c: (
            c.update(production=True),
            api(c).update(image={"ref": zero}),
            c["database"].update(image=zero),
        )
    )
    for key in (f"{API}.image.ref", "database.image.ref"):
        assert "placeholder digest" in problem(error, key) and "HARD-035" in problem(error, key)


def test_text_that_starts_like_json_stays_text() -> None:
    config = stack_file_config("dev")
    config["kubeContext"] = "[dev] cluster {a}"
    run = run_stack("dev", config)
    provider = next(r for r in run.registrations if r.type == "pulumi:providers:kubernetes")
    assert provider.inputs["context"] == "[dev] cluster {a}"


def test_a_registry_too_long_for_a_service_repository_is_named() -> None:
    registry = "quay.io/" + "/".join(["o" * 60] * 4)
    message = problem(config_error(lambda c: c.update(registry=registry)), "registry")
    assert "more than the 255 a registry takes; shorten registry" in message


def test_wildcard_host_renders() -> None:
    config = stack_file_config("dev")
    config["services"]["mcp-store-inventory"]["expose"]["host"] = "*.dev.example.com"
    run = run_stack("dev", config)
    ingress = next(r for r in run.kubernetes_objects() if r.type.endswith("Ingress"))
    assert ingress.inputs["spec"]["rules"][0]["host"] == "*.dev.example.com"


def assert_plain(message: str) -> None:
    """No pydantic sentence, regular expression or Python repr in a user's message."""
    for raw in ("Input should", "String should match pattern", "Value error,", "^", "$'", "\\d", "[a-z"):
        assert raw not in message, message


def test_version_yaml_made_a_number_gets_the_quote_hint() -> None:
    error = config_error(lambda c: c.update(kubernetesVersion=1.30))
    message = problem(error, "kubernetesVersion")
    assert message == (
        "is 1.3, which YAML made of the number 1.30; quote the version in the stack file: "
        'kubernetesVersion: "1.30"'
    )


def test_a_quantity_of_the_wrong_type_is_one_problem() -> None:
    error = config_error(
        lambda c: (
            api(c)["resources"]["limits"].update(cpu=True),
            api(c)["resources"]["requests"].update(cpu=[1]),
        )
    )
    assert problem(error, f"{API}.resources.limits.cpu").startswith(
        "is true or false; a quantity is a number"
    )
    assert problem(error, f"{API}.resources.requests.cpu").startswith("is a list; a quantity is a number")
    assert [p for p, _ in error.problems if ".cpu." in p] == []


def test_true_is_not_a_number() -> None:
    error = config_error(lambda c: api(c).update(port=True))
    expected = "is true or false, not a number; write a whole number such as 8080"
    assert problem(error, f"{API}.port") == expected


def test_wrong_types_are_worded_for_the_user() -> None:
    error = config_error(
        lambda c: (
            api(c).update(port=70000, bearerAuth="sometimes", replicas=1.5),
            api(c).pop("autoscaling"),
            c["database"].update(sslmode="on"),
        )
    )
    assert problem(error, f"{API}.port") == "is 70000; use a number less than or equal to 65535"
    assert problem(error, f"{API}.bearerAuth") == 'is "sometimes", not true or false; write true or false'
    assert "not a whole number" in problem(error, f"{API}.replicas")
    assert problem(error, "database.sslmode") == (
        'is "on"; use one of: disable, allow, prefer, require, verify-ca or verify-full'
    )
    for _, message in error.problems:
        assert_plain(message)


# --- Stack files read strictly --------------------------------------------------------------


def test_a_duplicate_key_is_an_error_with_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text("name: shop\nruntime: python\n")
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  shop:namespace: a\n  shop:services:\n    web: {port: 1}\n  shop:namespace: b\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_stack_file(tmp_path, "dev")
    assert caught.value.problems == [
        (
            "Pulumi.dev.yaml:5",
            'duplicate key "shop:namespace" (first at line 2); YAML would keep only the last one: '
            "merge the two into one key",
        )
    ]


def test_duplicate_nested_key_fails_the_render(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = project_copy(tmp_path)
    path = project / "Pulumi.dev.yaml"
    path.write_text(path.read_text().replace("      port: 8000\n", "      port: 8000\n      port: 8001\n", 1))
    assert render(project, tmp_path / "out") == 2
    assert re.search(
        r'Pulumi\.dev\.yaml:\d+: duplicate key "port" \(first at line \d+\)', capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("full_key", "expected"),
    [
        ("store-inventroy:registry", 'did you mean "store-inventory:registry"?'),
        ("other-project:namespace", 'did you mean "store-inventory:namespace"?'),
        ("store-inventory-x:anything", 'did you mean "store-inventory:anything"?'),
    ],
)
def test_a_key_under_another_projects_prefix_is_named(full_key: str, expected: str) -> None:
    values, secret_keys = engine_config(stack_file_config("dev"))
    values[full_key] = "quay.io/other"
    with pytest.raises(ConfigError) as caught:
        run_program(ROOT, "dev", config=values, secret_keys=secret_keys)
    message = problem(caught.value, full_key)
    assert expected in message and f'"{PROJECT}" in Pulumi.yaml' in message


def test_provider_keys_are_left_to_their_providers() -> None:
    values, secret_keys = engine_config(stack_file_config("dev"))
    values["kubernetes:namespace"] = "elsewhere"
    values["pulumi:disable-default-providers"] = '["kubernetes"]'
    run_program(ROOT, "dev", config=values, secret_keys=secret_keys)


# --- Notes about unset secrets ----------------------------------------------------------------


def test_secrets_used_follow_the_stack() -> None:
    dev = load_stack_file(ROOT, "dev")[1]["config"]
    assert secrets_used(dev) == {"databasePassword", "authToken"}
    assert secrets_used({"p:services": {"web": {"port": 1}}}) == set()
    assert secrets_used({"p:service": {"bearerAuth": True}}) == {"authToken"}


def test_render_notes_only_secrets_the_stack_uses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = one_service_project(
        tmp_path, "dev", f"image: {{ref: {PINNED}}}\nport: 8080\n", production=False
    )
    assert render(project, tmp_path / "out") == 0
    assert "Note: secret" not in capsys.readouterr().out
    (tmp_path / "full").mkdir()
    project = project_copy(tmp_path / "full")
    assert render(project, tmp_path / "out2") == 0
    out = capsys.readouterr().out
    assert "Note: secret databasePassword" in out and "Note: secret authToken" in out
