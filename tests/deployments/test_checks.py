"""The deployments' keys are checked when the site starts."""

from deployments.checks import deployment_keys_check


def test_development_keys_pass_outside_production(settings):
    settings.PRODUCTION = False
    settings.DEPLOYMENTS_SECRETS_KEY = ""

    assert deployment_keys_check() == []


def test_production_refuses_the_development_keys(settings):
    settings.PRODUCTION = True
    settings.DEPLOYMENTS_SECRETS_KEY = ""
    settings.DEPLOYMENTS_SIGNING_KEY = ""
    settings.DEPLOYMENTS_REGISTRY_PASSWORD = ""

    ids = [finding.id for finding in deployment_keys_check()]

    assert ids == ["deployments.E002", "deployments.E002", "deployments.E003"]


def test_a_malformed_key_is_refused_without_quoting_it(settings):
    settings.DEPLOYMENTS_SECRETS_KEY = "not-a-key-at-all"

    findings = deployment_keys_check()

    assert [finding.id for finding in findings] == ["deployments.E001"]
    assert "not-a-key-at-all" not in findings[0].msg
